"""Entry-point wrapper for the experiments' absl mains: errors as one clear line."""

from __future__ import annotations

import re
import sys
import traceback
from typing import Callable

from absl import app

from lm_jax.errors import LMJaxError


def run(main: Callable[[list[str]], None]) -> None:
  """``app.run(main)``, turning lm_jax errors and unknown config fields into an exit message."""
  try:
    app.run(main)
  except LMJaxError as e:
    sys.exit(f"error: {e}")
  except AttributeError as e:
    # ml_collections rejects --config.<unknown> overrides with an AttributeError
    # whose text is the quoted key plus a suggestion; anything else is a real bug.
    text = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'")
    m = re.match(r"'?([\w.]+)'?\s*(.*)", text)
    frames = traceback.extract_tb(e.__traceback__)
    from_config = bool(frames) and "ml_collections" in frames[-1].filename
    if m and from_config and any(a.startswith("--config.") and m.group(1) in a for a in sys.argv):
      sys.exit(f"error: unknown config field {m.group(1)!r}. {m.group(2)} "
               "Fields are listed in the config file given with --config.".replace("  ", " "))
    raise
