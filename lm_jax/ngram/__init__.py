"""Count-based language models built from vectorized count arrays."""
