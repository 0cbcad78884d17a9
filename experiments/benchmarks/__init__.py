"""Benchmark suites: each module's ``run(quick=False) -> str`` returns a markdown section."""
