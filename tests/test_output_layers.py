"""Output layers (full, adaptive, class, sampled) and RNN + MaxEnt: exactness, gradients, parity."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from runs import finals_of, run_metrics

from configs import rnn as rnn_configs
from lm_jax import optim, train
from lm_jax.errors import ConfigError
from lm_jax.models import ModelConfig, adaptive_tail, get_model, maxent
from lm_jax.models import output_layers as ol
from lm_jax.models import sampled_softmax as ss
from lm_jax.sampling import sample_from_workdir
from lm_jax.spec import OptimConfig, TrainConfig, parse_neural
from lm_jax.summary import summarize
from lm_jax.train.step import init_state, train_step


def make_cfg(v: int, **kw) -> ModelConfig:
  base = dict(kind="elman", embed_dim=6, hidden_dim=8, num_layers=1, in_vocab=v + 1, out_vocab=v)
  return ModelConfig(**{**base, "bos_id": v, **kw})


def layer_kwargs(output: str, v: int) -> dict:
  if output == "adaptive":
    return dict(output="adaptive", adaptive_cutoffs=f"{v // 10},{v // 2}", adaptive_div=2.0)
  if output == "class":  # Zipf-like counts: frequent ids in small classes, rare ones in big.
    return dict(output="class", class_bounds=ol.frequency_classes(1e6 / np.arange(1, v + 1), 7))
  if output == "maxent":
    return dict(output="full", maxent_order=3, maxent_hash_size=3 * v)
  return dict(output=output)


def perturbed_params(cfg, dtype, seed=0):
  """Initial params with every float leaf moved off its init (biases, MaxEnt table too)."""
  params = get_model(cfg).init(jax.random.PRNGKey(seed), cfg)
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
  leaves = [
    (x + 0.3 * jax.random.normal(k, x.shape)).astype(dtype)
    if jnp.issubdtype(x.dtype, jnp.floating)
    else x
    for x, k in zip(leaves, keys)
  ]
  return jax.tree.unflatten(tree, leaves)


def carry_as(carry, dtype):
  return jax.tree.map(
    lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, carry
  )


def problem(cfg, b=3, t=7, seed=2):
  rng = np.random.default_rng(seed)
  inputs = rng.integers(0, cfg.in_vocab, (b, t)).astype(np.int32)
  inputs[:, 0] = cfg.bos_id
  return jnp.asarray(inputs), jnp.asarray(rng.integers(0, cfg.out_vocab, (b, t)).astype(np.int32))


def exact_and_train_losses(cfg, params, inputs, targets, dtype):
  model = get_model(cfg)
  carry = carry_as(model.init_carry(cfg, inputs.shape[0]), dtype)

  def exact(p):
    scores, _ = model.apply(p, carry, inputs, cfg)
    logp = jax.nn.log_softmax(scores, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1).sum()

  def trained(p):
    feats, _ = model.apply(p, carry, inputs, cfg, hidden=True)
    return ol.train_sum_nll(p, feats, targets, cfg, jax.random.PRNGKey(0))

  return exact, trained


@pytest.mark.parametrize(
  ("output", "v"),
  [("full", 2_000), ("maxent", 2_000)]
  + [(o, v) for o in ("adaptive", "class") for v in (20, 2_000, 50_000)],
)
def test_exact_layers_sum_to_one_in_float64(output, v):
  with jax.enable_x64(True):
    cfg = make_cfg(v, **layer_kwargs(output, v))
    params = perturbed_params(cfg, jnp.float64)
    model = get_model(cfg)
    inputs, _ = problem(cfg)
    carry = carry_as(model.init_carry(cfg, 3), jnp.float64)
    scores, _ = jax.jit(functools.partial(model.apply, cfg=cfg))(params, carry, inputs)
    assert scores.shape == (3, 7, v) and scores.dtype == jnp.float64
    total = jnp.exp(jax.nn.log_softmax(scores, axis=-1)).sum(-1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    if output in ("adaptive", "class"):  # These return log-probabilities themselves.
      np.testing.assert_allclose(jnp.exp(scores).sum(-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("output", ["full", "adaptive", "class", "maxent"])
def test_training_loss_and_its_hand_written_gradients_equal_autodiff_of_the_exact_loss(output):
  """The training path (fused or blocked, custom backward passes) against jax.grad of
  -log_softmax(scores)[target], float64.  V = 300: the adaptive clusters get blocks of
  two sizes, and some rows fall in none."""
  with jax.enable_x64(True):
    cfg = make_cfg(300, **layer_kwargs(output, 300))
    params = perturbed_params(cfg, jnp.float64)
    inputs, targets = problem(cfg, b=6, t=15)
    if output == "adaptive":  # More than 32 rows in the first tail cluster.
      targets = targets.at[:4].set(30 + targets[:4] % 100)
    exact, trained = exact_and_train_losses(cfg, params, inputs, targets, jnp.float64)
    (loss, ours), (ref_loss, ref) = (
      jax.jit(jax.value_and_grad(f))(params) for f in (trained, exact)
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    for path, a, b in zip(
      jax.tree_util.tree_leaves_with_path(ours), *map(jax.tree.leaves, (ours, ref))
    ):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=str(path[0]))


@pytest.mark.parametrize(
  ("output", "targets_in"),
  [("full", None), ("class", None), ("maxent", None)]
  + [("adaptive", t) for t in ("head", "mixed", "last cluster")],
)
def test_evaluation_nll_is_minus_log_softmax_of_the_scores(output, targets_in):
  """``token_nll`` (what evaluation sums) against ``-log_softmax(scores)[target]``, float64.
  Adaptive (V = 300, clusters [30, 150) and [150, 300)), 20 x 15 = 300 rows: every
  target in the head (no tail rows), drawn uniformly (a block per cluster), or every
  one in the last cluster (300 rows: more than the largest block, so the loop)."""
  with jax.enable_x64(True):
    cfg = make_cfg(300, **layer_kwargs(output, 300))
    params = perturbed_params(cfg, jnp.float64)
    inputs, targets = problem(cfg, b=20, t=15)
    if targets_in == "head":
      targets = targets % 30
    elif targets_in == "last cluster":
      targets = 150 + targets % 150
    model = get_model(cfg)
    carry = carry_as(model.init_carry(cfg, 20), jnp.float64)

    def both(p):
      scores, _ = model.apply(p, carry, inputs, cfg)
      feats, _ = model.apply(p, carry, inputs, cfg, hidden=True)
      ref = -jnp.take_along_axis(jax.nn.log_softmax(scores), targets[..., None], -1)[..., 0]
      return ol.token_nll(p, feats, targets, cfg), ref

    ours, ref = jax.jit(both)(params)
    assert ours.shape == targets.shape and ours.dtype == jnp.float64
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize(
  "count,masked",
  [(0, False), (32, False), (33, False), (256, False), (600, False), (33, True), (600, True)],
)  # none, exact, next size, loops; with a dropout mask in one block and in the loop
def test_adaptive_tail_blocks_of_every_size_equal_autodiff(count, masked):
  """One tail cluster's loss and gradients, whichever block (or loop of blocks) holds its
  rows, against jax.grad of the plain formula over the same rows, float64; with a
  dropout mask, the formula is ``log_softmax((h P) * mask W + b)``."""
  with jax.enable_x64(True):
    n, d_in, d, size = 600, 5, 3, 40
    k = jax.random.split(jax.random.PRNGKey(count), 6)
    h, p, w, b = (
      jax.random.normal(kk, s) for kk, s in zip(k, [(n, d_in), (d_in, d), (d, size), (size,)])
    )
    inside = jax.random.permutation(k[4], jnp.arange(n) < count)
    local = jnp.arange(n) * 7 % size
    # Inverted dropout at rate 0.5: scales 0 or 2.
    mask = jax.random.bernoulli(k[5], 0.5, (n, d)) * 2.0 if masked else None

    def plain(h, p, w, b):
      x = h @ p if mask is None else (h @ p) * mask
      nll = -jnp.take_along_axis(jax.nn.log_softmax(x @ w + b), local[:, None], -1)[:, 0]
      return jnp.where(inside, nll, 0.0).sum()

    def blocked(h, p, w, b):
      return adaptive_tail.cluster_sum_nll(
        h, p, w, b, adaptive_tail.padded_rows(inside), local, inside.sum(), mask
      )

    (loss, ours), (ref_loss, ref) = (
      jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2, 3)))(h, p, w, b) for f in (blocked, plain)
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for a, r in zip(ours, ref):
      np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-12)
    assert (loss > 0) == (count > 0)


def test_adaptive_dropout_drops_the_tail_projections_in_training_only():
  """``model.adaptive_dropout``: the training loss with an rng equals the formula with the
  same inverted-dropout masks on each cluster's ``h P``; without an rng (or at rate 0) it
  is the exact, undropped loss."""
  v, n, d = 300, 50, 8
  cfg = make_cfg(v, **layer_kwargs("adaptive", v), adaptive_dropout=0.5)
  params = perturbed_params(cfg, jnp.float32)
  h = jax.random.normal(jax.random.PRNGKey(3), (n, d))
  t = jnp.arange(n, dtype=jnp.int32) * 37 % v  # ids in the head and both clusters
  rng = jax.random.PRNGKey(4)

  @jax.jit  # One compilation, not one per eager op.
  def losses(params, h, t, rng):
    dropped, undropped = (
      ol.adaptive_sum_nll(params, h, t, cfg, rng),
      ol.adaptive_sum_nll(params, h, t, cfg),
    )
    exact = -jnp.take_along_axis(ol.adaptive_log_probs(params, h, cfg), t[:, None], -1).sum()
    # The same loss written out: head log-softmax plus each cluster's softmax of (h P) m W + b.
    head = jax.nn.log_softmax(h @ params["W_o"] + params["b_o"])
    s = cfg.cutoffs[0]
    total = -jnp.where(t < s, head[jnp.arange(n), jnp.minimum(t, s - 1)], 0.0).sum()
    for i, ((a, b), tail) in enumerate(zip(ol.cluster_bounds(cfg), params["tail"])):
      mask = jax.random.bernoulli(jax.random.fold_in(rng, i), 0.5, (n, tail["P"].shape[1])) / 0.5
      lp = jax.nn.log_softmax((h @ tail["P"]) * mask @ tail["W"] + tail["b"])
      inside = (t >= a) & (t < b)
      picked = head[:, s + i] + lp[jnp.arange(n), jnp.clip(t - a, 0, b - a - 1)]
      total = total - jnp.where(inside, picked, 0.0).sum()
    return dropped, undropped, exact, total

  dropped, undropped, exact, total = losses(params, h, t, rng)
  np.testing.assert_allclose(undropped, exact, rtol=1e-5)
  assert abs(float(dropped) - float(exact)) > 1e-3 * float(exact)  # the masks changed it
  np.testing.assert_allclose(dropped, total, rtol=1e-5)


def test_adaptive_matches_pytorch_adaptive_log_softmax():
  """Same weights and cutoffs as torch.nn.AdaptiveLogSoftmaxWithLoss (head bias on, tail
  clusters without biases, torch's hidden sizes in // div ** (i + 1)); float32."""
  torch = pytest.importorskip("torch")
  v, d, cutoffs, div = 1_000, 32, [50, 300], 4.0
  torch.manual_seed(0)
  peer = torch.nn.AdaptiveLogSoftmaxWithLoss(d, v, cutoffs, div_value=div, head_bias=True)
  torch.nn.init.normal_(peer.head.bias)
  cfg = make_cfg(
    v, embed_dim=d, hidden_dim=d, output="adaptive", adaptive_cutoffs="50,300", adaptive_div=div
  )
  assert ol.tail_dims(cfg) == [t[0].out_features for t in peer.tail] == [8, 2]
  as_np = lambda w: jnp.asarray(w.detach().numpy())
  params = {
    "W_o": as_np(peer.head.weight).T,
    "b_o": as_np(peer.head.bias),
    "tail": [
      {"P": as_np(t[0].weight).T, "W": as_np(t[1].weight).T, "b": jnp.zeros(t[1].out_features)}
      for t in peer.tail
    ],
  }
  rng = np.random.default_rng(0)
  h = rng.normal(size=(64, d)).astype(np.float32)
  targets = rng.integers(0, v, 64)
  theirs = peer.log_prob(torch.from_numpy(h)).detach().numpy()
  ours = np.asarray(ol.adaptive_log_probs(params, jnp.asarray(h), cfg))
  np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
  out = peer(torch.from_numpy(h), torch.from_numpy(targets))
  loss = ol.adaptive_sum_nll(params, jnp.asarray(h), jnp.asarray(targets, jnp.int32), cfg)
  np.testing.assert_allclose(float(loss), -out.output.sum().item(), rtol=1e-5)


def test_frequency_classes_follow_the_rnnlm_binning():
  # counts 6, 3, 1 (total 10), 2 classes: after word 0 the share is 0.6 > 1/2, so word 0
  # closes class 0; words 1 and 2 (shares 0.9, 1.0, never > 2/2) fill class 1.
  assert ol.frequency_classes([6, 3, 1], 2) == (0, 1, 3)
  # Equal counts, 4 classes of 8 words: the share passes k/4 after word 2k, 4k, 6k.
  assert ol.frequency_classes([1] * 8, 4) == (0, 3, 5, 7, 8)
  bounds = ol.frequency_classes(1e6 / np.arange(1, 10_001), 100)
  assert bounds[0] == 0 and bounds[-1] == 10_000 and len(bounds) <= 101
  assert all(b > a for a, b in zip(bounds, bounds[1:]))


def test_log_uniform_sampler_and_correction_are_tensorflows():
  v, s = 50, 200_000
  k = np.arange(v)
  q = (np.log(k + 2.0) - np.log(k + 1.0)) / np.log(v + 1.0)  # TF's LogUniformSampler
  np.testing.assert_allclose(np.exp(ss.log_uniform_log_q(jnp.asarray(k), v)), q, rtol=1e-6)
  assert abs(q.sum() - 1.0) < 1e-12  # telescoping: log(v + 1) / log(v + 1)
  draws = np.asarray(ss.sample_log_uniform(jax.random.PRNGKey(0), s, v))
  assert draws.min() >= 0 and draws.max() < v
  # 200k draws: each frequency within 5 standard deviations (sqrt(q / s) <= 0.0016) of Q.
  freq = np.bincount(draws, minlength=v) / s
  assert np.all(np.abs(freq - q) < 5 * np.sqrt(q / s))
  # unique=True: the first 12 distinct ids of the draw sequence, and how many draws it took.
  key = jax.random.PRNGKey(4)
  ids, tries = map(np.asarray, ss.sample_unique(key, 12, v))
  assert len(set(ids.tolist())) == 12 and tries >= 12
  rounds = np.concatenate(
    [np.asarray(ss.sample_log_uniform(k, 12, v)) for k in _round_keys(key, int(tries) // 12 + 1)]
  )
  first = list(dict.fromkeys(rounds[:tries].tolist()))
  assert first == ids.tolist() and rounds[tries - 1] == ids[-1]
  # Logits: h.w + b - log(expected count), -expm1(tries log1p(-Q)), accidental hits removed.
  rng = np.random.default_rng(0)
  h, w, b = rng.normal(size=(3, 4)), rng.normal(size=(4, v)), rng.normal(size=v)
  t, sampled = np.array([0, 7, 9]), np.array([7, 1, 30, 2])
  out = np.asarray(ss.sampled_logits(*map(jnp.asarray, (h, w, b, t, sampled, 40))))
  corr = lambda ids: np.log(-np.expm1(40 * np.log1p(-q[ids])))
  np.testing.assert_allclose(out[:, 0], (h * w[:, t].T).sum(1) + b[t] - corr(t), rtol=1e-5)
  expect = h @ w[:, sampled] + b[sampled] - corr(sampled)
  hits = sampled[None] == t[:, None]
  np.testing.assert_allclose(out[:, 1:][~hits], expect[~hits], rtol=1e-5)
  assert np.all(out[:, 1:][hits] == np.finfo(np.float32).min) and hits.sum() == 1


def _round_keys(key, n):
  """The keys sample_unique draws its rounds with (split, keep the first, use the second)."""
  out = []
  for _ in range(n):
    key, sub = jax.random.split(key)
    out.append(sub)
  return out


def test_sampled_loss_becomes_the_full_softmax_as_the_sample_covers_the_vocabulary():
  """Every id but the target drawn: expected counts near 1, the loss near the full one;
  a small sample is far from it."""
  v = 30
  rng = np.random.default_rng(0)
  h, w = jnp.asarray(rng.normal(size=(40, 8))), jnp.asarray(rng.normal(size=(8, v)) * 0.5)
  b, t = jnp.zeros(v), jnp.asarray(rng.integers(0, v, 40), jnp.int32)
  full = float(ol.losses.output_nll(h, w, b, t).sum())
  loss = jax.jit(ss.sampled_sum_nll, static_argnums=(5,))
  gaps = [abs(float(loss(h, w, b, t, jax.random.PRNGKey(1), n)) - full) / full for n in (3, v)]
  assert gaps[1] < 0.02 < gaps[0]


def test_blackout_loss_is_the_weighted_softmax_of_ji_et_al():
  rng = np.random.default_rng(1)
  v, n = 40, 5
  h, w, b = rng.normal(size=(n, 6)), rng.normal(size=(6, v)), rng.normal(size=v)
  t = rng.integers(0, v, n)
  key = jax.random.PRNGKey(3)
  sampled, tries = map(np.asarray, ss.sample_unique(key, 16, v))
  q = (np.log(np.arange(v) + 2.0) - np.log(np.arange(v) + 1.0)) / np.log(v + 1.0)
  count = -np.expm1(tries * np.log1p(-q))  # TF's expected count of a unique draw
  total = 0.0
  for i in range(n):  # p~(j) = exp(s_j) / E_j normalized over {target} + samples (hits dropped)
    ids = [t[i]] + [k for k in sampled if k != t[i]]
    z = np.array([np.exp(h[i] @ w[:, k] + b[k]) / count[k] for k in ids])
    p = z / z.sum()
    total -= np.log(p[0]) + np.log1p(-p[1:]).sum()
  ours = ss.sampled_sum_nll(*map(jnp.asarray, (h, w, b, t)), key, 16, "blackout")
  np.testing.assert_allclose(float(ours), total, rtol=1e-4)


def test_maxent_features_see_only_the_last_words_of_the_sentence():
  cfg = make_cfg(20, maxent_order=3, maxent_hash_size=100)
  bos = cfg.bos_id
  seqs = np.array(
    [
      [5, 6, 7, 8, 9],  # same last two inputs at t=4 as the next row
      [1, 2, 3, 8, 9],
      [5, 6, 7, bos, 9],  # a sentence starts at t=3: history <s> 9, then padded
      [1, 2, 3, bos, 9],
    ],
    np.int32,
  )
  from lm_jax.models.window import windows

  hist = jnp.full((4, 2), bos, jnp.int32)
  ctx, _ = windows(hist, jnp.asarray(seqs), bos)
  offs = np.asarray(maxent.maxent_offsets(ctx, cfg))
  assert offs.shape == (4, 5, 2) and offs.min() >= 0 and offs.max() <= 100 - 20
  np.testing.assert_array_equal(offs[0, 4], offs[1, 4])
  np.testing.assert_array_equal(offs[2, 3:], offs[3, 3:])
  assert not np.array_equal(offs[0, 2], offs[1, 2])  # different recent words


def test_output_config_errors_name_the_fix():
  config = rnn_configs.get_config("lstm_small_ptb,tiny")
  for update, message in (
    (dict(output="softmax"), "model.output='softmax'"),
    (dict(output="adaptive"), "needs model.adaptive_cutoffs"),
    (dict(output="adaptive", adaptive_cutoffs="50,20"), "must be increasing"),
    (dict(output="full", adaptive_dropout=0.2), "adaptive_dropout"),
    (dict(output="adaptive", adaptive_cutoffs="50", adaptive_dropout=1.0), "in \\[0, 1\\)"),
    (dict(output="class", tie_weights=True), "model.tie_weights shares the embedding"),
    (dict(maxent_order=1), "adds no feature"),
    (dict(maxent_order=3, output="sampled"), "model.output='full'"),
  ):
    c = rnn_configs.get_config("lstm_small_ptb,tiny")
    c.model.update(**update)
    with pytest.raises(ConfigError, match=message):
      parse_neural(c)
  config.optim.name = "adam"
  config.optim.sparse_embedding = True
  with pytest.raises(ConfigError, match="exact for plain SGD only"):
    parse_neural(config)
  config = rnn_configs.get_config("lstm_small_ptb_adaptive,tiny")
  config.model.adaptive_cutoffs = "200,100000"
  with pytest.raises(ConfigError, match="must stay below"):
    train.train_and_evaluate(config, "/nonexistent/never-written")


@pytest.mark.parametrize("layer", ["adaptive", "maxent"])
def test_sparse_embedding_sgd_equals_dense_sgd_with_clipping(layer):
  if layer == "adaptive":
    cfg, extra = make_cfg(40, output="adaptive", adaptive_cutoffs="10,25"), {}
  else:  # MaxEnt weights on their own SGD rate and L2, in both paths
    cfg, extra = make_cfg(40, **layer_kwargs("maxent", 40)), dict(maxent_learning_rate=3.0)
    extra["maxent_l2"] = 0.1
  tc = TrainConfig(batch_size=4, seq_len=6)
  rng = np.random.default_rng(0)
  data = {
    "inputs": rng.integers(0, 41, (4, 60)).astype(np.int32),
    "targets": rng.integers(0, 40, (4, 60)).astype(np.int32),
  }
  out = []
  for sparse in (False, True):
    oc = OptimConfig(name="sgd", learning_rate=0.5, clip_norm=1.0, sparse_embedding=sparse, **extra)
    step = jax.jit(
      functools.partial(
        train_step, model_cfg=cfg, optim_cfg=oc, train_cfg=tc, steps_per_epoch=10, total_steps=10
      )
    )
    state = init_state(0, cfg, oc, 4)
    for _ in range(10):  # repeated ids in every segment: their gradients must accumulate
      state = step(state, data)
    out.append(state.params)
  for a, b in zip(*map(jax.tree.leaves, out)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_maxent_weights_take_plain_sgd_with_l2_and_the_rest_adam():
  params = {"W": jnp.array([0.5, -1.0, 2.0]), "maxent": jnp.array([1.0, -2.0, 0.0, 3.0])}
  grads = {"W": jnp.array([3.0, 0.0, -4.0]), "maxent": jnp.array([0.0, 4.0, -2.0, 1.0])}
  norm = math.sqrt(9 + 16 + 16 + 4 + 1)  # the global norm over both: clipping sees all
  base = dict(name="adam", learning_rate=2e-3, clip_norm=2.0)
  split = optim.make_optimizer(OptimConfig(**base, maxent_learning_rate=0.5, maxent_l2=0.25))
  updates, _ = split.update(grads, split.init(params), params)
  clipped = {k: np.asarray(g) * 2.0 / norm for k, g in grads.items()}
  # SGD at 0.5 with L2 0.25: direction (g + 0.25 w) * 0.5 / 2e-3, scaled by -2e-3 in the step.
  want = (clipped["maxent"] + 0.25 * np.asarray(params["maxent"])) * 0.5 / 2e-3
  np.testing.assert_allclose(updates["maxent"], want, rtol=1e-6)
  adam = optim.make_optimizer(OptimConfig(**base))
  plain, _ = adam.update(grads, adam.init(params), params)
  np.testing.assert_allclose(updates["W"], plain["W"], rtol=1e-6)  # Adam, elementwise
  assert not np.allclose(plain["maxent"], updates["maxent"])
  config = rnn_configs.get_config("lstm_small_ptb,tiny")
  config.optim.maxent_learning_rate = 1.0
  with pytest.raises(ConfigError, match="model.maxent_order=0 has none"):
    parse_neural(config)


@pytest.mark.parametrize(
  "preset",
  ["lstm_small_ptb_adaptive", "lstm_small_ptb_class", "lstm_small_ptb_sampled", "elman_maxent_ptb"],
)
def test_tiny_runs_of_every_output_layer_train_score_dump_and_sample(preset, tmp_path):
  config = rnn_configs.get_config(f"{preset},tiny")
  config.eval.dump_tokens = True
  if preset in ("lstm_small_ptb_class", "lstm_small_ptb_sampled"):  # The path, not the curve.
    config.train.update(num_steps=20, log_every_steps=5)
  full = train.train_and_evaluate(config, str(tmp_path / "full"))
  if preset == "elman_maxent_ptb":  # Its carry holds the n-gram history: resume is exact.
    assert train.train_and_evaluate(config, str(tmp_path / "split"), stop_after=20) == {}
    assert train.train_and_evaluate(config, str(tmp_path / "split")) == full
  losses = [r["loss"] for r in run_metrics(tmp_path / "full") if r["kind"] == "train"]
  assert losses[-1] < losses[0]
  final = finals_of(run_metrics(tmp_path / "full"))
  assert math.isfinite(final["test"]["perplexity"]) and final["test"]["perplexity"] > 1
  dump = (tmp_path / "full" / "test.tokens.tsv").read_text().splitlines()
  assert len(dump) > final["test"]["tokens"]  # a header and one line per scored token
  samples = sample_from_workdir(str(tmp_path / "full"), num_samples=2, max_len=10)
  assert len(samples) == 2
  summary = summarize(str(tmp_path / "full"), preset, "abc1234")
  assert summary["final"] == final and summary["steps"] == config.train.num_steps
  assert summary["name"] == preset and summary["lm_jax_commit"] == "abc1234"
