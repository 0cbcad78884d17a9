"""``.npy`` files written and read a slice at a time with plain file I/O.

Memory-mapping a file makes every page it touches count in the process's resident
memory until the kernel reclaims it; out-of-core estimation streams its arrays
through bounded buffers instead, so its resident memory is what it holds.
"""

from __future__ import annotations

import os

import numpy as np


class NpyWriter:
  """Writes a 1-D ``.npy`` file in appended slices; ``length=None``: as many as are written
  (the header keeps room for any length and is rewritten at ``close``)."""

  _ROOM = 128  # header bytes of a file whose length is known only at the end

  def __init__(self, path: str, dtype, length: int | None):
    self.dtype, self.length, self.written = np.dtype(dtype), length, 0
    self.f = open(path, "wb")
    self.f.write(self._header_bytes(length or 0))

  def _header_bytes(self, length: int) -> bytes:
    descr = np.lib.format.dtype_to_descr(self.dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': ({length},), }}"
    if self.length is not None:  # As numpy pads it: to a multiple of 64 bytes.
      total = -(-(10 + len(text) + 1) // 64) * 64
    else:
      total = self._ROOM
    return (
      b"\x93NUMPY\x01\x00"
      + (total - 10).to_bytes(2, "little")
      + (text.ljust(total - 11) + "\n").encode("latin1")
    )

  def write(self, values) -> None:
    a = np.ascontiguousarray(values, dtype=self.dtype)
    self.f.write(a.tobytes())
    self.written += len(a)

  def close(self) -> None:
    if self.length is None:
      self.f.seek(0)
      self.f.write(self._header_bytes(self.written))
    self.f.close()
    if self.length is not None and self.written != self.length:
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


class FileArray:
  """A 1-D ``.npy`` file looked up in place by plain reads of the blocks a batch needs.

  ``a[idx]`` gathers and ``a.searchsorted(q)`` (over sorted values, side left) act as
  numpy's; lookups are grouped into spans of nearby blocks, each read with one ``pread``.
  Nothing is mapped, so the process holds only the index of each block's first value
  (``1 / BLOCK`` of the array, built on the first search) and one span at a time; the
  page cache keeps the blocks that are looked up often.
  """

  BLOCK = 4096  # bytes per block; the search index keeps one value per block
  SPAN = 256  # blocks at most in one read
  GAP = 4  # needed blocks this close share a read

  def __init__(self, path: str):
    with open(path, "rb") as f:
      (self.size,), _, self.dtype = _header(f)
      self.offset = f.tell()
    self.path, self.per, self._index = path, max(1, self.BLOCK // self.dtype.itemsize), None
    self._fd = os.open(path, os.O_RDONLY)
    if os.fstat(self._fd).st_size < self.offset + self.size * self.dtype.itemsize:
      os.close(self._fd)
      self._fd = None
      raise ValueError(f"{path} is shorter than its header says")

  def __len__(self) -> int:
    return self.size

  def __del__(self):
    if getattr(self, "_fd", None) is not None:
      os.close(self._fd)
      self._fd = None

  def read(self, lo: int, hi: int) -> np.ndarray:
    n = self.dtype.itemsize
    buf = os.pread(self._fd, (hi - lo) * n, self.offset + lo * n)
    if len(buf) != (hi - lo) * n:
      raise ValueError(f"{self.path} is shorter than its header says")
    return np.frombuffer(buf, self.dtype)

  def _spans(self, blocks: np.ndarray):
    """(first block, last block, start, stop) over ``blocks`` (sorted): the lookups
    ``start:stop`` fall in blocks first..last, read together."""
    cut = (np.diff(blocks) > self.GAP) | (np.diff(blocks // self.SPAN) != 0)
    starts = np.concatenate([[0], np.flatnonzero(cut) + 1])
    stops = np.append(starts[1:], len(blocks))
    return zip(blocks[starts].tolist(), blocks[stops - 1].tolist(), starts, stops)

  def _sorted(self, values: np.ndarray):
    if np.all(values[:-1] <= values[1:]):
      return values, None
    order = np.argsort(values, kind="stable")
    return values[order], order

  def __getitem__(self, idx) -> np.ndarray:
    idx = np.asarray(idx, np.int64)
    flat = np.where(idx < 0, idx + self.size, idx).ravel()  # -1 is the last, as in numpy
    if len(flat) and (flat.min() < 0 or flat.max() >= self.size):
      raise IndexError(f"index out of range for {self.path} of {self.size} values")
    if not len(flat):
      return np.empty(idx.shape, self.dtype)
    pos, order = self._sorted(flat)
    out = np.empty(len(pos), self.dtype)
    for b0, b1, i, j in self._spans(pos // self.per):
      lo = b0 * self.per
      part = self.read(lo, min((b1 + 1) * self.per, self.size))
      out[i:j] = part[pos[i:j] - lo]
    if order is not None:
      out[order] = out.copy()
    return out.reshape(idx.shape)

  def searchsorted(self, q) -> np.ndarray:
    """``np.searchsorted(array, q)`` (side left) of an array whose values are sorted."""
    if self._index is None:  # One sequential pass: the first value of every block.
      step = self.per * self.SPAN
      self._index = np.concatenate(
        [self.read(lo, min(lo + step, self.size))[:: self.per] for lo in range(0, self.size, step)]
        or [np.empty(0, self.dtype)]
      )
    q = np.asarray(q)
    if not q.size:
      return np.empty(q.shape, np.int64)
    qs, order = self._sorted(q.ravel())
    # The last block starting below q: the first value >= q is in it or starts the next.
    blocks = np.maximum(np.searchsorted(self._index, qs) - 1, 0)
    out = np.empty(len(qs), np.int64)
    for b0, b1, i, j in self._spans(blocks):
      lo = b0 * self.per
      part = self.read(lo, min((b1 + 1) * self.per, self.size))
      out[i:j] = lo + np.searchsorted(part, qs[i:j])
    if order is not None:
      out[order] = out.copy()
    return out.reshape(q.shape)
