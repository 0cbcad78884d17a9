"""Entry-point wrapper for the experiments' absl mains: errors as one clear line.

lm_jax errors, unknown ``--config.`` fields and failed writes (a full disk, a
read-only folder) end the process with ``error: ...`` on one line and a non-zero
status; the run directory keeps its last good checkpoint.  Orbax's progress
messages stay out of the default output.
"""

from __future__ import annotations

import errno
import logging as py_logging
import re
import sys
import traceback
from collections.abc import Callable

from absl import app

from lm_jax.errors import LMJaxError

_DISK = {
  errno.ENOSPC: "the disk is full",
  errno.EDQUOT: "the disk quota is exceeded",
  errno.EFBIG: "a file grew past the size limit",
  errno.EROFS: "the file system is read-only",
  errno.EACCES: "permission denied",
  errno.EPERM: "permission denied",
}


class _QuietLibraries(py_logging.Filter):
  """Drops orbax's and tensorboardX's log lines: progress needs no action, and their failures
  surface as exceptions, which ``run`` reports in one line."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    path = record.pathname.replace("\\", "/")
    return record.levelno >= py_logging.CRITICAL or not any(
      f"/{lib}/" in path for lib in ("orbax", "tensorboardX", "etils")
    )


def _io_error(e: BaseException) -> OSError | None:
  """The OSError behind ``e`` (orbax and tensorstore wrap them), if any."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in _DISK:
      return e
    text = str(e)
    for code in _DISK:  # tensorstore reports os_error_code='28'; Python, [Errno 28].
      if (
        f"[Errno {code}]" in text
        or f"os_error_code='{code}'" in text
        or (code == errno.ENOSPC and "No space left" in text)
      ):
        return OSError(code, text.splitlines()[0][:200] if text else "")
    e = e.__cause__ or e.__context__
  return None


def run(main: Callable[[list[str]], None]) -> None:
  """``app.run(main)``, turning lm_jax errors, config typos and write failures into one line."""
  py_logging.getLogger("absl").addFilter(_QuietLibraries())
  try:
    app.run(main)
  except LMJaxError as e:
    sys.exit(f"error: {' '.join(str(e).split())}")
  except AttributeError as e:
    # ml_collections rejects --config.<unknown> overrides with an AttributeError
    # whose text is the quoted key plus a suggestion; anything else is a real bug.
    text = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'")
    m = re.match(r"'?([\w.]+)'?\s*(.*)", text)
    frames = traceback.extract_tb(e.__traceback__)
    from_config = bool(frames) and "ml_collections" in frames[-1].filename
    if m and from_config and any(a.startswith("--config.") and m.group(1) in a for a in sys.argv):
      sys.exit(
        f"error: unknown config field {m.group(1)!r}. {m.group(2)} "
        "Fields are listed in the config file given with --config.".replace("  ", " ")
      )
    raise
  except Exception as e:  # noqa: BLE001 -- only write failures are turned into a message.
    io = _io_error(e)
    if io is None:
      raise
    detail = [str(x) for x in (io.strerror, io.filename) if x and not str(x).startswith("[Errno")]
    where = f" ({': '.join(detail)})" if detail else ""
    sys.exit(
      f"error: a write failed because {_DISK[io.errno]}{where}; nothing after the last "
      "checkpoint was kept. Free space or choose a --workdir you can write to, then rerun "
      "the same command to resume."
    )
