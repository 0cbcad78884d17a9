"""Out-of-core (modified) Kneser-Ney estimation in a memory budget, as lmplz ``-S``/``-T``.

The in-memory path (``counts.count_ngrams``) keeps every distinct n-gram in RAM.
Here the n-gram tables live in an in-memory DuckDB database whose blocks spill to
``temp_dir``, and every stage is a relational query that DuckDB runs within
``memory_limit``, spilling tables, hash tables and sorts to disk when they do not fit: the
stages of KenLM's builder as queries (in memory, not a file: a file keeps dropped blocks).

1. Counting: the training text streams in chunks; each chunk inserts its top-order
   windows (and the lower-order n-grams that start with ``<s>``), then one
   ``GROUP BY`` counts them.
2. Adjusted counts: an order's continuation counts are a ``GROUP BY`` of the
   order above on its suffix; n-grams starting with ``<s>`` keep raw counts.
3. Discounts: counts-of-counts per order (with lmplz's one-n-gram-per-order
   statistics, tracked while streaming), then Chen & Goodman's formula.
4. Denominators and gammas: a ``GROUP BY`` on each order's context.
5. Interpolation, lowest order first: each order joins its context's sums, then
   its suffix's probability (one join per statement: two hash joins in one
   pipeline can exhaust the engine's memory where each alone spills).
6. Output: each order sorted as the in-memory trie (by last word, then the
   word before, ...), its suffix's rank being the suffix's row in the order
   below's sorted table, read back a slice at a time into ``.npy`` files
   (``OrderArrays``).

Every probability takes the same IEEE operations, in the same order, as
``kneser_ney.kneser_ney``: the tables are equal bit for bit (logarithms are numpy's).
``arrays_io.ArrayModel`` writes the ARPA file from the arrays (byte-identical to the
in-memory writer's) and ``arrays_io.save_scoring`` the scoring model read from disk.

DuckDB is the engine because it already does this, tested at scale (README, "Out of core").
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable

import numpy as np

from lm_jax.data.tokens import TokenArray
from lm_jax.errors import ConfigError
from lm_jax.ngram import kneser_ney as kn_lib
from lm_jax.ngram import ooc_stream
from lm_jax.ngram.ooc_arrays import Estimate, Stages, log_nan, save_order, write_order

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
# The share of the budget DuckDB may use; the rest holds one text chunk, its windows
# and one output chunk in numpy (see ``_chunk_rows``), and the engine's own memory
# outside its buffer pool (measured: the process's RSS exceeds the limit by up to 1 GB
# at 100M tokens).
ENGINE_SHARE = 0.5
MIN_MEMORY = 48 * 2**20


def parse_memory(value) -> int | None:
  """Bytes from ``"2G"``, ``"500M"``, ``"80%"`` (of physical memory) or a number; None: off."""
  if value in (None, "", 0):
    return None
  text = str(value).strip().upper()
  m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text)
  pct = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
  if m:
    nbytes = int(float(m.group(1)) * _UNITS[m.group(2)])
  elif pct:
    nbytes = int(
      float(pct.group(1)) / 100 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    )
  else:
    raise ConfigError(
      f"memory={value!r} is not a size; use bytes or a string such as '2G', '500M' or '50%' "
      "(as lmplz -S)."
    )
  if nbytes < MIN_MEMORY:
    raise ConfigError(
      f"memory={value!r} is {nbytes} bytes; out-of-core estimation needs at least "
      f"{MIN_MEMORY // 2**20}M (the engine's working set). Give a larger budget."
    )
  return nbytes


def _cols(k: int, prefix: str = "") -> str:
  return ", ".join(f"{prefix}w{j}" for j in range(1, k + 1))


def _on(k: int, left: str, right: str, shift: int = 0) -> str:
  """Join condition ``left.w(j+shift) = right.wj`` for j = 1..k."""
  return " AND ".join(f"{left}.w{j + shift} = {right}.w{j}" for j in range(1, k + 1))


def _desc(k: int) -> str:
  """The trie's order: last word first (a suffix's extensions are contiguous)."""
  return ", ".join(f"w{j}" for j in range(k, 0, -1))


def estimate_kneser_ney(
  chunks: Iterable[TokenArray],
  vocab_size: int,
  bos_id: int,
  order: int,
  memory: int,
  temp_dir: str | None,
  modified: bool = True,
  fallback: tuple[float, ...] | None = None,
  lmplz_statistics: bool = True,
  out_dir: str = "",
  threads: int | None = None,
  stages: Stages | None = None,
) -> Estimate:
  """Interpolated (modified) Kneser-Ney of order >= 2 from streamed chunks of whole sentences,
  within ``memory`` bytes, with the engine's files in a directory under ``temp_dir`` (removed
  at the end); the arrays land in ``out_dir``.  Equal to ``kneser_ney.kneser_ney``."""
  import duckdb  # Deferred: only out-of-core runs need the engine.

  if order < 2:
    raise ConfigError("out-of-core estimation needs order >= 2; unigrams fit in memory anyway.")
  if not out_dir:
    raise ValueError("out_dir is required: the directory for the model's arrays.")
  os.makedirs(out_dir, exist_ok=True)
  base = tempfile.mkdtemp(prefix="lm_jax-ngram-engine-", dir=temp_dir)
  con = duckdb.connect(":memory:")
  try:
    con.execute(f"SET memory_limit = '{int(memory * ENGINE_SHARE) // 2**20}MB'")
    con.execute(f"SET temp_directory = '{os.path.join(base, 'spill')}'")
    con.execute(f"SET threads = {threads or len(os.sched_getaffinity(0))}")
    # Set only around the sorts whose order is read back by rowid; elsewhere it costs memory.
    con.execute("SET preserve_insertion_order = false")
    # Joins run as written, each probing a smaller table: reordered, ``x.w2 = c.w2 AND x.w2 =
    # s.w1`` let the optimizer join the two small tables on one word first (a near cross product).
    con.execute("SET disabled_optimizers = 'join_order'")
    stages = stages or Stages(base)
    stages.restart(base)
    windows = ooc_stream.Windows(con, order, vocab_size, bos_id)
    for chunk in chunks:
      windows.add(chunk)
    if windows.window is None:
      raise ConfigError("the training text is empty; give a corpus with at least one sentence.")
    stages.done("read")
    est = _estimate(con, windows, modified, fallback, lmplz_statistics, out_dir, memory, stages)
    est.info["stages"] = stages.rows
    return est
  except duckdb.OutOfMemoryException as e:
    raise ConfigError(
      f"memory={memory / 2**20:.0f} MiB is too small for this corpus: the engine's working "
      f"set did not fit its {ENGINE_SHARE:.0%} share even spilling to disk "
      f"({str(e).splitlines()[0]}). Give a larger "
      "budget (--config.memory=...)."
    ) from None
  except duckdb.IOException as e:
    raise ConfigError(
      f"out-of-core estimation could not write its temporary files under {base} "
      f"({str(e).splitlines()[0]}); free "
      "disk space there or point temp_dir at a larger disk (--config.temp_dir=DIR)."
    ) from None
  finally:
    con.close()
    shutil.rmtree(base, ignore_errors=True)


def _estimate(
  con, w: ooc_stream.Windows, modified, fallback, lmplz_stats, out_dir, memory, stages: Stages
) -> Estimate:
  n, size, bos = w.n, w.size, w.bos
  q = con.execute
  # 1-2. Counts and adjusted counts (a{k}: w1..wk, a); the raw counts lmplz's statistics need.
  q(f"CREATE TABLE a{n} AS SELECT {_cols(n)}, count(*) AS a FROM top GROUP BY ALL")
  q("DROP TABLE top")
  stages.done("count")
  grams = ooc_stream.lmplz_grams(w) if lmplz_stats else []
  raws = [ooc_stream.raw_count(con, w, g) for g in grams]
  for k in range(n - 1, 1, -1):
    shifted = ", ".join(f"w{j + 1} AS w{j}" for j in range(1, k + 1))
    q(
      f"CREATE TABLE a{k} AS SELECT {shifted}, count(*) AS a FROM a{k + 1} GROUP BY ALL "
      f"UNION ALL SELECT {_cols(k)}, count(*) AS a FROM bos{k} GROUP BY ALL"
    )
    q(f"DROP TABLE bos{k}")
  stages.done("adjust")
  cont = q("SELECT w2, count(*) AS m FROM a2 GROUP BY w2").fetchnumpy()
  adj1 = np.zeros(size, np.int64)
  adj1[cont["w2"]] = cont["m"]
  adj1[bos] = 0
  # 3. Counts-of-counts (lmplz's: one n-gram per order counted by its raw count), discounts.
  coc = [kn_lib.count_of_counts(adj1)]
  for k in range(2, n + 1):
    rows = q(f"SELECT least(a, 5) AS b, count(*) AS m FROM a{k} GROUP BY b").fetchnumpy()
    c = np.zeros(6, np.int64)
    c[rows["b"]] = rows["m"]
    coc.append(c[:5])
  for g, raw in zip(grams, raws):
    k = len(g)
    where = " AND ".join(f"w{j + 1} = {x}" for j, x in enumerate(g))
    adj = (
      int(adj1[g[0]]) if k == 1 else int(q(f"SELECT a FROM a{k} WHERE {where}").fetchall()[0][0])
    )
    for value, step in ((adj, -1), (raw, 1)):
      if value < len(coc[k - 1]):
        coc[k - 1][value] += step
  ds, notes = kn_lib.discounts_from_counts(coc, modified, fallback)
  stages.done("discounts")
  # 4-5. The lowest order in numpy, the others in the engine, as kneser_ney.kneser_ney.
  d = ds[0]
  pred = np.ones(size, bool)
  pred[bos] = False
  disc = d[np.minimum(adj1, 3)]
  bucket = [float((adj1 == 1).sum()), float((adj1 == 2).sum()), float((adj1 >= 3).sum())]
  denom1 = float(adj1.sum())
  gamma1 = sum(d[j + 1] * bucket[j] for j in range(3)) / denom1
  prob1 = np.where(pred, (adj1 - disc) / denom1 + gamma1 / int(pred.sum()), 0.0)
  con.register("p1_np", {"w1": np.arange(size, dtype=np.int32), "p": prob1})
  q("CREATE TABLE p1 AS SELECT * FROM p1_np")
  con.unregister("p1_np")
  for k in range(2, n + 1):
    # Discounts as parameters: SQL number literals would be DECIMALs, not these doubles.
    dk = {f"d{j}": float(ds[k - 1][j]) for j in (1, 2, 3)}
    pre = _cols(k - 1)
    # Σa and the bucket counts are exact integers in float64, as numpy's bincount gives them.
    q(
      f"CREATE TABLE ctx{k} AS SELECT {pre}, denom, "
      f"($d1 * n1 + $d2 * n2 + $d3 * n3) / denom AS gamma FROM ("
      f"SELECT {pre}, sum(a)::DOUBLE AS denom, count_if(a = 1)::DOUBLE AS n1, "
      f"count_if(a = 2)::DOUBLE AS n2, count_if(a >= 3)::DOUBLE AS n3 FROM a{k} GROUP BY ALL)",
      dk,
    )
    # One join per statement: two hash joins in one pipeline can exhaust the engine's
    # memory where each alone spills (measured: 10M tokens in a 200M budget).
    q(
      f"CREATE TABLE t{k} AS SELECT {_cols(k, 'x.')}, (x.a - CASE WHEN x.a = 1 THEN $d1 "
      f"WHEN x.a = 2 THEN $d2 ELSE $d3 END) / c.denom AS u, c.gamma AS g FROM a{k} x "
      f"JOIN ctx{k} c ON {_on(k - 1, 'x', 'c')}",
      dk,
    )
    q(f"DROP TABLE a{k}")
    q(
      f"CREATE TABLE p{k} AS SELECT {_cols(k, 'x.')}, x.u + x.g * s.p AS p FROM t{k} x "
      f"JOIN p{k - 1} s ON {_on(k - 1, 'x', 's', 1)}"
    )
    q(f"DROP TABLE t{k}")
    stages.done(f"interpolate {k}")
  # 6. Each order sorted as the trie, with its suffix's rank and its back-off (as a context).
  ctx2 = q("SELECT w1, gamma FROM ctx2").fetchnumpy()
  gamma = np.full(size, np.nan)
  gamma[ctx2["w1"]] = ctx2["gamma"]
  arrays = [
    save_order(
      out_dir,
      1,
      np.full(size, -1, np.int32),
      np.arange(size, dtype=np.int32),
      np.log(prob1, where=prob1 > 0, out=np.full(size, -np.inf)),
      log_nan(gamma),
    )
  ]
  for k in range(2, n + 1):
    # The suffix's rank is its row in the order below's sorted table (rowid): no window
    # function, which would hold a whole order in memory.
    if k < n:  # Its back-off as a context (NULL where it is none).
      q(
        f"CREATE TABLE b{k} AS SELECT x.*, c.gamma FROM p{k} x "
        f"LEFT JOIN ctx{k + 1} c ON {_on(k, 'x', 'c')}"
      )
    else:
      q(f"CREATE TABLE b{k} AS SELECT *, NULL::DOUBLE AS gamma FROM p{k}")
    rank, below = (
      ("x.w2", "") if k == 2 else ("s.rowid", f" JOIN out{k - 1} s ON {_on(k - 1, 'x', 's', 1)}")
    )
    words = f", {_cols(k, 'x.')}" if k < n else ""  # For the next order's suffix join.
    q(
      f"CREATE TABLE u{k} AS SELECT {rank}::INTEGER AS suffix, x.w1 AS first, x.p, x.gamma"
      f"{words} FROM b{k} x{below}"
    )
    q(f"DROP TABLE b{k}")
    q("SET preserve_insertion_order = true")  # The sorted table keeps its order: rowid = rank.
    q(f"CREATE TABLE out{k} AS SELECT * FROM u{k} ORDER BY suffix, first")
    q(f"DROP TABLE u{k}")
    if k > 2:
      q(f"DROP TABLE out{k - 1}")
    q(f"DROP TABLE p{k - 1}")
    q(f"DROP TABLE ctx{k}")
    stages.done(f"sort {k}")
    arrays.append(write_order(con, f"out{k}", out_dir, k, _chunk_rows(memory)))
    q("SET preserve_insertion_order = false")
    stages.done(f"arrays {k}")
  q(f"DROP TABLE out{n}")
  info = {"discounts": [list(map(float, x[1:])) for x in ds], "discount_notes": notes}
  return Estimate(size, tuple(arrays), info)


def chunk_tokens(memory: int) -> int:
  """Tokens per text chunk: as Python token lists about 100 bytes each, then about 60 bytes
  of windows, in an eighth of the budget's numpy share (Python keeps freed list memory in
  its arenas, so a text chunk's peak stays resident for the rest of the run)."""
  return max(1 << 14, int(memory * (1 - ENGINE_SHARE) / 8 / 100))


def _chunk_rows(memory: int) -> int:
  """Rows per output chunk: about 60 bytes each in flight, in the budget's numpy share."""
  return max(1 << 16, int(memory * (1 - ENGINE_SHARE) / 4 / 60))
