"""One writer per run directory: ``DIR/.lock`` names its holder (host, pid, start time).

Taking the lock creates the file exclusively (``O_EXCL``).  A second process is
refused at once with the holder's host and pid.  A lock whose process is gone on
this host (a SIGKILL, a crash) is stale and taken over with a warning; a holder
on another host cannot be checked from here and is refused, naming the file to
delete if that job is known to be gone.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from absl import logging

from lm_jax.errors import WorkdirError

LOCK = ".lock"


def _process_start(pid: int) -> str | None:
  """The kernel's start time of ``pid`` (tells a live holder from a reused pid), if readable."""
  try:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(holder: dict) -> bool:
  try:
    os.kill(int(holder["pid"]), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, KeyError, ValueError, TypeError):
    return True
  start = holder.get("pid_start")
  return start is None or _process_start(int(holder["pid"])) in (None, start)


class WorkdirLock:
  """The held lock of one directory."""

  def __init__(self, path: str):
    self.path = path

  @classmethod
  def acquire(cls, directory: str) -> WorkdirLock:
    lock = os.path.join(directory, LOCK)
    me = {
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "pid_start": _process_start(os.getpid()),
      "since": time.strftime("%Y-%m-%d %H:%M:%S"),
      "argv": sys.argv,
    }
    for _ in range(3):
      try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        try:
          with open(lock, encoding="utf-8") as f:
            holder = json.load(f)
        except (OSError, ValueError):
          holder = {}
        if (
          holder.get("host") == me["host"] and holder.get("pid") is not None and not _alive(holder)
        ):
          logging.warning(
            "removing a stale lock of pid %s (no longer running) on %s",
            holder.get("pid"),
            directory,
          )
          os.remove(lock)
          continue
        if not holder and time.time() - os.path.getmtime(lock) < 5:
          time.sleep(0.2)  # Another process is writing its lock right now.
          continue
        raise WorkdirError(  # noqa: B904 -- the lock is held: that is the error, not the read.
          f"{directory} is in use by pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
          f"since {holder.get('since', '?')}; two runs must not write one workdir. Wait for it "
          f"to finish, or if that process is gone, delete {lock}."
        )
      with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(me, f)
      return cls(lock)
    raise WorkdirError(f"could not take the lock {lock}; delete it if no run uses {directory}.")

  def release(self) -> None:
    try:
      os.remove(self.path)
    except FileNotFoundError:
      pass
