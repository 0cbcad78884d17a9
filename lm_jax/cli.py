"""Entry-point wrapper for the experiments' absl mains: errors as one clear line.

lm_jax errors, unknown ``--config.`` fields and failed writes (a full disk, a
read-only folder) end the process with ``error: ...`` on one line and a non-zero
status; the run directory keeps its last good checkpoint.  Orbax's progress
messages stay out of the default output.
"""

from __future__ import annotations

import errno
import logging as py_logging
import os
import re
import sys
import traceback
from collections.abc import Callable

from absl import app, flags

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
    if "xla_bridge" in path and record.levelno < py_logging.WARNING:
      return False  # "Unable to initialize backend 'tpu'" on every CPU run.
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


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a bad flag value (a config file that fails to load, an
  unknown preset, ``--config.x=abc`` for an int) as one ``error:`` line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    # A config file's own exception is embedded as a traceback: keep its last line.
    cause = lines[-1] if len(lines) > 1 and "Traceback" in str(e) else " ".join(lines)
    flag = lines[0].split(": ", 1)[0] if lines else ""
    sys.exit(f"error: {flag}: {cause}" if flag and flag not in cause else f"error: {cause}")


def _config_error(e: BaseException) -> str | None:
  """A one-line message for ml_collections' own errors about a --config override, or None."""
  frames = traceback.extract_tb(e.__traceback__)
  if not any("ml_collections" in f.filename for f in frames[-3:]):
    return None
  text = str(e).strip("'\"").replace("\\n", " ").replace("\\'", "'")
  m = re.match(r"'?([\w.]+)'?\s*(.*)", text)
  if isinstance(e, OSError):  # The --config file itself.
    return f"{' '.join(text.split())}; give --config=path/to/file.py[:preset]."
  if m and any(a.startswith("--config.") and m.group(1) in a for a in sys.argv):
    return (
      f"unknown config field {m.group(1)!r}. {m.group(2)} "
      "Fields are listed in the config file given with --config."
    ).replace("  ", " ")
  return None


def run(main: Callable[[list[str]], None]) -> None:
  """``app.run(main)``, turning lm_jax errors, config typos and write failures into one line."""
  py_logging.getLogger("absl").addFilter(_QuietLibraries())
  try:
    app.run(main, flags_parser=_parse_flags)
  except LMJaxError as e:
    sys.exit(f"error: {' '.join(str(e).split())}")
  except KeyboardInterrupt:
    sys.exit("error: interrupted; rerun the same command to resume from the last checkpoint.")
  except BrokenPipeError:  # `... | head`: the reader has gone; say nothing more.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
  except (AttributeError, KeyError, OSError) as e:
    message = _config_error(e)
    if message:
      sys.exit(f"error: {message}")
    io = _io_error(e)
    if io is None:
      raise
    _write_failed(io)
  except Exception as e:  # noqa: BLE001 -- only write failures are turned into a message.
    io = _io_error(e)
    if io is None:
      raise
    _write_failed(io)


def _write_failed(io: OSError) -> None:
  path = f" {io.filename}" if getattr(io, "filename", None) else ""
  detail = f" ({io.strerror})" if io.strerror and not str(io.strerror).startswith("[Errno") else ""
  sys.exit(
    f"error: cannot write{path}: {_DISK[io.errno]}{detail}. Free space or choose a place you "
    "can write to, then rerun the same command (training resumes from its last checkpoint)."
  )
