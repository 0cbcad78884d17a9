"""The train state and the one train step.

The step counter is the only data position: step ``s`` trains on segment
``s % steps_per_epoch`` of the stream (cut on the host, ``TrainStream.segment``)
and uses dropout key ``fold_in(rng, s)``, so a restored state continues exactly
where it stopped.  Training metrics are
summed on the device (``acc``) and pulled to the host only at log steps.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding

from lm_jax import optim, parallel
from lm_jax.models import ModelConfig, get_model, output_layers
from lm_jax.spec import OptimConfig, TrainConfig

# A run stops when its loss per token exceeds this many times the uniform model's ln V:
# no model that is learning scores that badly; the run has diverged (or overflowed).
DIVERGENCE_FACTOR = 10.0


@flax.struct.dataclass
class TrainState:
  """Everything a resumed run needs; ``acc`` sums the metrics since the last log record."""

  step: jax.Array
  params: Any
  opt_state: Any
  carry: Any
  plateau: Any
  rng: jax.Array
  acc: dict


def fresh_acc(bad_step=None) -> dict:
  """Empty metric sums; ``bad_step`` (the first diverged step, -1 for none) is kept across logs."""
  bad = jnp.full((), -1, jnp.int32) if bad_step is None else bad_step
  return {
    "nll": jnp.zeros((), jnp.float32),
    "steps": jnp.zeros((), jnp.int32),
    "lr": jnp.zeros((), jnp.float32),
    "bad_step": bad,
    "bad_nll": jnp.zeros((), jnp.float32),
  }


def init_state(seed: int, cfg: ModelConfig, optim_cfg: OptimConfig, batch_size: int) -> TrainState:
  """Params from ``fold_in(seed, 0)``; dropout keys later come from ``fold_in(rng, step)``."""
  model = get_model(cfg)
  root = jax.random.PRNGKey(seed)
  params = model.init(jax.random.fold_in(root, 0), cfg)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=optim.make_optimizer(optim_cfg).init(params),
    carry=model.init_carry(cfg, batch_size),
    plateau=optim.make_plateau(optim_cfg).init(params),
    rng=jax.random.fold_in(root, 1),
    acc=fresh_acc(),
  )


def state_shardings(state: TrainState, mesh, batch_size: int, cfg: ModelConfig) -> TrainState:
  """Where each leaf lives (``lm_jax.parallel``): RNN state rows split over the data axis;
  vocabulary-sized parameters and their optimizer state over the model axis; the rest
  replicated."""
  sizes = output_layers.vocab_sizes(cfg)

  def by_vocab(x):
    return NamedSharding(mesh, parallel.vocab_spec(tuple(x.shape), sizes, mesh))

  rep = parallel.replicated(mesh)
  return jax.tree.map(lambda _: rep, state).replace(
    params=jax.tree.map(by_vocab, state.params),
    opt_state=jax.tree.map(by_vocab, state.opt_state),
    plateau=jax.tree.map(by_vocab, state.plateau),
    carry=jax.tree.map(lambda x: parallel.rows_sharding(mesh, x, batch_size), state.carry),
  )


def placed(abstract: TrainState, shardings: TrainState) -> TrainState:
  """Shapes and dtypes with their shardings: what a restore or a compile targets."""
  return jax.tree.map(
    lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings
  )


def _manual_sum_nll(params, carry, inputs_BxT, targets_BxT, cfg: ModelConfig):
  from lm_jax.models.bptt import manual_elman_sum_nll  # Deferred: only grad="manual" needs it.

  weights_BxT = jnp.ones(targets_BxT.shape, jnp.float32)
  sum_nll, h_BxH = manual_elman_sum_nll(
    params, carry[0]["h"], inputs_BxT, targets_BxT, weights_BxT, cfg.activation
  )
  return sum_nll, [{"h": h_BxH}]


def train_step(
  state: TrainState,
  data: dict,
  *,
  model_cfg: ModelConfig,
  optim_cfg: OptimConfig,
  train_cfg: TrainConfig,
  steps_per_epoch: int,
  total_steps: int,
) -> TrainState:
  """One SGD step on ``data``: segment ``step % steps_per_epoch`` of the stream, [B, T] each."""
  cfg, t, model = model_cfg, train_cfg, get_model(model_cfg)
  pos = state.step % steps_per_epoch
  inputs_BxT, targets_BxT = data["inputs"], data["targets"]
  fresh = (pos == 0) | (not t.carry_state)  # A new epoch restarts the text: restart the state.
  carry = jax.tree.map(
    lambda z, c: jnp.where(fresh, z, c), model.init_carry(cfg, t.batch_size), state.carry
  )
  rng = jax.random.fold_in(state.rng, state.step)
  tokens = t.batch_size * t.seq_len
  normalizer = float(t.batch_size if t.loss_normalizer == "sequences" else tokens)

  def loss_fn(params, embedded=None):
    if cfg.grad == "manual":
      sum_nll, new_carry = _manual_sum_nll(params, carry, inputs_BxT, targets_BxT, cfg)
    else:
      run_params, run_carry = params, carry
      if t.compute_dtype != "float32":  # float32 masters, cast here: their gradients stay f32
        run_params, run_carry, embedded = _compute_cast(params, carry, embedded, cfg, t)
      feats, new_carry = model.apply(
        run_params, run_carry, inputs_BxT, cfg, rng=rng, train=True, hidden=True, embedded=embedded
      )
      new_carry = jax.tree.map(lambda n, c: n.astype(c.dtype), new_carry, carry)
      sampling_rng = jax.random.fold_in(rng, 1 << 30)  # sampled softmax's candidates
      sum_nll = output_layers.train_sum_nll(params, feats, targets_BxT, cfg, sampling_rng)
    return sum_nll / normalizer, (sum_nll, new_carry)

  lr = (
    optim.learning_rate(optim_cfg, state.step, steps_per_epoch, total_steps) * state.plateau.scale
  )
  if optim_cfg.sparse_embedding:
    params, opt_state, sum_nll, new_carry = _sparse_embedding_sgd(
      loss_fn, state, inputs_BxT, optim_cfg, lr
    )
  else:
    (_, (sum_nll, new_carry)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optim.make_optimizer(optim_cfg).update(
      grads, state.opt_state, state.params
    )
    params = optax.apply_updates(state.params, jax.tree.map(lambda u: -lr * u, updates))
  acc = state.acc
  limit = DIVERGENCE_FACTOR * math.log(cfg.out_vocab) * tokens
  first_bad = (acc["bad_step"] < 0) & ~(sum_nll <= limit)  # NaN compares false: bad too.
  acc = {
    "nll": acc["nll"] + sum_nll,
    "steps": acc["steps"] + 1,
    "lr": lr.astype(jnp.float32),
    "bad_step": jnp.where(first_bad, state.step + 1, acc["bad_step"]),
    "bad_nll": jnp.where(first_bad, sum_nll / tokens, acc["bad_nll"]),
  }
  # Truncated BPTT: the next segment starts from this state but sends no gradient back.
  return state.replace(
    step=state.step + 1,
    params=params,
    opt_state=opt_state,
    carry=jax.lax.stop_gradient(new_carry),
    acc=acc,
  )


def _compute_cast(params, carry, embedded, cfg: ModelConfig, t: TrainConfig):
  """Params (but the output layer's), carry and embedded rows in ``t.compute_dtype``."""
  dtype = jnp.dtype(t.compute_dtype)
  out_keys = output_layers.param_keys(cfg)

  def cast(x):
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

  body = {k: v if k in out_keys else jax.tree.map(cast, v) for k, v in params.items()}
  return body, jax.tree.map(cast, carry), None if embedded is None else cast(embedded)


def _sparse_embedding_sgd(loss_fn, state: TrainState, inputs_BxT, optim_cfg: OptimConfig, lr):
  """Plain SGD that touches only the embedding rows of this segment's inputs.

  The loss is differentiated with respect to the gathered rows ``embed[inputs]``; the
  rows' gradient is added back into ``embed`` in place (repeated ids accumulate).  The
  global norm for clipping counts each id's summed gradient once, as the dense gradient
  would, so the update equals dense SGD's up to float summation order.
  """
  embed = state.params["embed"]
  rest = {k: v for k, v in state.params.items() if k != "embed"}
  embedded = embed[inputs_BxT]
  (_, (sum_nll, new_carry)), (g_rest, g_rows) = jax.value_and_grad(
    lambda r, e: loss_fn({**r, "embed": embed}, e), argnums=(0, 1), has_aux=True
  )(rest, embedded)
  ids_N = inputs_BxT.reshape(-1)
  g_NxE = g_rows.reshape(ids_N.shape[0], -1)
  scale = jnp.ones((), jnp.float32)
  if optim_cfg.clip_norm > 0:  # As optax.clip_by_global_norm over the dense gradient.
    order = jnp.argsort(ids_N)
    sorted_ids = ids_N[order]
    segment = jnp.cumsum(jnp.concatenate([jnp.zeros(1, jnp.int32), (jnp.diff(sorted_ids) != 0)]))
    per_id = jax.ops.segment_sum(g_NxE[order], segment, num_segments=ids_N.shape[0])
    sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(g_rest)) + jnp.sum(jnp.square(per_id))
    norm = jnp.sqrt(sq)
    scale = jnp.where(norm < optim_cfg.clip_norm, 1.0, optim_cfg.clip_norm / norm)
  step = -lr * scale
  params = {k: jax.tree.map(lambda p, g: p + step * g, v, g_rest[k]) for k, v in rest.items()}
  if optim_cfg.maxent_learning_rate:  # as optim.make_optimizer's MaxEnt direction
    w, ratio = rest["maxent"], optim_cfg.maxent_learning_rate / optim_cfg.learning_rate
    params["maxent"] = w - lr * ratio * (scale * g_rest["maxent"] + optim_cfg.maxent_l2 * w)
  params["embed"] = embed.at[ids_N].add(step * g_NxE)
  return params, state.opt_state, sum_nll, new_carry


def jit_train_step(
  cfg: ModelConfig,
  optim_cfg: OptimConfig,
  train_cfg: TrainConfig,
  steps_per_epoch: int,
  total_steps: int,
  shardings,
  data_sharding,
):
  """``train_step`` jitted once for a run, its shardings declared: state in = state out, donated."""
  return jax.jit(
    functools.partial(
      train_step,
      model_cfg=cfg,
      optim_cfg=optim_cfg,
      train_cfg=train_cfg,
      steps_per_epoch=steps_per_epoch,
      total_steps=total_steps,
    ),
    in_shardings=(shardings, data_sharding),
    out_shardings=shardings,
    donate_argnums=0,
  )


def reset_acc(state: TrainState) -> TrainState:
  """The state after a log record: sums restart, the first diverged step is remembered."""
  return state.replace(acc=fresh_acc(state.acc["bad_step"]))


def plateau_step(state: TrainState, valid_nll_per_token, *, optim_cfg: OptimConfig) -> TrainState:
  """Feeds one epoch's validation loss to the plateau schedule."""
  return state.replace(plateau=optim.plateau_update(optim_cfg, state.plateau, valid_nll_per_token))
