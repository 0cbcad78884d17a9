"""Independent, deliberately naive dict-based n-gram models for cross-checking lm_jax.

Nothing here shares code with lm_jax.ngram: counts are Python Counters over
padded sentences and probabilities follow the textbook formulas directly.
"""

import collections
import math

BOS, EOS = "<s>", "</s>"


def ngram_counts(sentences, order):
  counts = {k: collections.Counter() for k in range(1, order + 1)}
  for s in sentences:
    padded = [BOS] + list(s) + [EOS]
    for k in range(1, order + 1):
      for i in range(len(padded) - k + 1):
        counts[k][tuple(padded[i : i + k])] += 1
  return counts


def kneser_ney(sentences, order, vocab_predictable, modified=True):
  """Interpolated (modified) Kneser-Ney, Chen & Goodman 1998; <s>-initial n-grams keep raw counts."""
  c = ngram_counts(sentences, order)
  adj = {}
  for k in range(1, order + 1):
    adj[k] = {}
    for g, n in c[k].items():
      if k == order or g[0] == BOS:
        adj[k][g] = n
      else:
        adj[k][g] = len({h[0] for h in c[k + 1] if h[1:] == g})
  adj[1].pop((BOS,), None)
  disc = {}
  for k in range(1, order + 1):
    n = collections.Counter(min(a, 5) for a in adj[k].values())
    if modified:
      y = n[1] / (n[1] + 2 * n[2])
      disc[k] = [0.0] + [j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)]
    else:
      d = n[1] / (n[1] + 2 * n[2])
      disc[k] = [0.0, d, d, d]

  def prob(w, h):
    k = len(h) + 1
    kids = {g: a for g, a in adj[k].items() if g[:-1] == h}
    if not kids:
      return prob(w, h[1:])
    denom = sum(kids.values())
    d = disc[k]
    gamma = sum(d[min(a, 3)] for a in kids.values()) / denom
    a = kids.get(h + (w,), 0)
    lower = 1.0 / len(vocab_predictable) if k == 1 else prob(w, h[1:])
    return (a - d[min(a, 3)]) / denom + gamma * lower

  return prob


def katz(sentences, order, vocab_predictable, k_max=5):
  """Katz back-off (1987) with Good-Turing ratios for counts <= k_max."""
  c = ngram_counts(sentences, order)

  def ratios(counts):
    n = collections.Counter(counts.values())
    k = next(k for k in range(k_max, 0, -1) if all(n[r] > 0 for r in range(1, k + 2)))
    common = (k + 1) * n[k + 1] / n[1]
    d = {r: ((r + 1) * n[r + 1] / (r * n[r]) - common) / (1 - common) for r in range(1, k + 1)}
    return {r: v if 0 < v <= 1 else 1.0 for r, v in d.items()}  # SRILM: out of range -> 1.

  unigrams = {w: c[1].get((w,), 0) for w in vocab_predictable}
  total = sum(unigrams.values())
  d1 = ratios({(w,): n for w, n in unigrams.items() if n})
  unseen = [w for w, n in unigrams.items() if n == 0]
  p1 = {w: n * d1.get(n, 1.0) / total for w, n in unigrams.items()}
  if unseen:
    left = 1 - sum(p1.values())
    for w in unseen:
      p1[w] = left / len(unseen)
  else:
    p1 = {w: n / total for w, n in unigrams.items()}
  d = {k: ratios(c[k]) for k in range(2, order + 1)}

  def prob(w, h):
    if not h:
      return p1[w]
    k = len(h) + 1
    kids = {g[-1]: n for g, n in c[k].items() if g[:-1] == h}
    if not kids:
      return prob(w, h[1:])
    ctx = sum(kids.values())
    star = {x: n * d[k].get(n, 1.0) / ctx for x, n in kids.items()}
    if all(n > max(d[k]) for n in kids.values()):  # No mass freed: discount as count k.
      star = {x: p * d[k][max(d[k])] for x, p in star.items()}
    if w in star:
      return star[w]
    alpha = (1 - sum(star.values())) / (1 - sum(prob(x, h[1:]) for x in kids))
    return alpha * prob(w, h[1:])

  return prob


def add_k(sentences, order, vocab_predictable, k_add):
  """(c(h w) + k) / (c(h) + k|V|) with h the full available history (n-1 words, or back to <s>)."""
  c = ngram_counts(sentences, order)
  v = len(vocab_predictable)

  def prob(w, h):
    kids = {g: n for g, n in c[len(h) + 1].items() if g[:-1] == h}
    return (kids.get(h + (w,), 0) + k_add) / (sum(kids.values()) + k_add * v)

  return prob


def log(x):
  return math.log(x) if x > 0 else -math.inf
