"""keep_freed_memory: a freed large block stays in the heap for the next step (glibc only).

Each case runs in a fresh interpreter: the setting is per process and must come before
the threads that allocate.  The check is what the setting is for: a 256 MB buffer
made and freed on a worker thread (as XLA's runtime does) is still resident afterwards,
where glibc's default unmaps it.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

from lm_jax import environment, host_memory

glibc = pytest.mark.skipif(
  platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)

_PROBE = r"""
import json, sys, threading
import numpy as np
from lm_jax import host_memory

def rss():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * 4096

output = sys.argv[1]
said = host_memory.for_training(output) if output else host_memory.keep_freed_memory()
before = rss()
def work():
  a = np.ones(64 * 2**20, np.float32)  # 256 MB, every page written
  del a
t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps({"said": said, "kept": rss() - before}))
"""


def _probe(output="", **env):
  out = subprocess.run(
    [sys.executable, "-c", _PROBE, output],
    env={**host_memory.environ_without_settings(), **env},
    capture_output=True,
    text=True,
    check=True,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  )
  return json.loads(out.stdout)


@glibc
def test_freed_block_stays_resident_and_opt_out_gives_it_back():
  kept = _probe()
  assert kept["said"].startswith("glibc malloc: one arena")
  assert kept["kept"] > 200 * 2**20, kept  # the 256 MB block is still in the heap
  default = _probe(**{host_memory.OPT_OUT: "system"})
  assert default["said"] == "system default (LM_JAX_HOST_MALLOC=system)"
  assert default["kept"] < 64 * 2**20, default  # glibc's default unmapped it


@glibc
def test_training_keeps_freed_memory_only_without_vocabulary_sized_blocks():
  for output in ("adaptive", "sampled"):
    kept = _probe(output)
    assert kept["said"].startswith("glibc malloc: one arena"), kept
    assert kept["kept"] > 200 * 2**20, kept
  for output in ("full", "class"):
    default = _probe(output)
    assert default["said"].startswith(f"system default (model.output={output}:"), default
    assert default["kept"] < 64 * 2**20, default


@glibc
def test_settings_in_the_environment_win():
  said = _probe(MALLOC_ARENA_MAX="4")["said"]
  assert said == "set by the environment (MALLOC_ARENA_MAX)"


def test_run_json_records_the_allocator():
  assert environment.environment()["host_malloc"] == host_memory.setting()
