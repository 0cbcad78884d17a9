"""Entry-point wrapper for the experiments' absl mains: errors as one clear line."""

from __future__ import annotations

import re
import sys
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
    # whose text is the quoted key plus a suggestion.
    text = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'")
    m = re.match(r"'?([\w.]+)'?\s*(.*)", text)
    if m and "--config." in " ".join(sys.argv):
      sys.exit(f"error: unknown config field {m.group(1)!r}. {m.group(2)} "
               "Fields are listed in the config file given with --config.".replace("  ", " "))
    raise
