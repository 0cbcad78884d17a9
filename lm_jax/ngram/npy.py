"""``.npy`` files written and read a slice at a time with plain file I/O.

Memory-mapping a file makes every page it touches count in the process's resident
memory until the kernel reclaims it; out-of-core estimation streams its arrays
through bounded buffers instead, so its resident memory is what it holds.
"""

from __future__ import annotations

import numpy as np


class NpyWriter:
  """Writes a 1-D ``.npy`` file of a known length in appended slices."""

  def __init__(self, path: str, dtype, length: int):
    self.dtype, self.length, self.written = np.dtype(dtype), length, 0
    self.f = open(path, "wb")
    np.lib.format.write_array_header_1_0(
      self.f,
      {
        "descr": np.lib.format.dtype_to_descr(self.dtype),
        "fortran_order": False,
        "shape": (length,),
      },
    )

  def write(self, values) -> None:
    a = np.ascontiguousarray(values, dtype=self.dtype)
    self.f.write(a.tobytes())
    self.written += len(a)

  def close(self) -> None:
    self.f.close()
    if self.written != self.length:
      raise ValueError(f"{self.f.name}: wrote {self.written} of {self.length} values")


def _header(f):
  version = np.lib.format.read_magic(f)
  if version == (1, 0):
    return np.lib.format.read_array_header_1_0(f)
  return np.lib.format.read_array_header_2_0(f)


def read(path: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
  """Values ``lo:hi`` of a 1-D ``.npy`` file, read into memory."""
  with open(path, "rb") as f:
    shape, _, dtype = _header(f)
    hi = shape[0] if hi is None else min(hi, shape[0])
    f.seek(f.tell() + lo * dtype.itemsize)
    return np.fromfile(f, dtype=dtype, count=max(hi - lo, 0))


def length(path: str) -> int:
  with open(path, "rb") as f:
    return _header(f)[0][0]
