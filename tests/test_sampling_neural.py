"""Neural sampling: exact sequences from fake logits, <unk> masking, top-k, determinism."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lm_jax import sampling
from lm_jax.data.vocab import EOS_ID, UNK_ID
from lm_jax.errors import ConfigError

V, BOS = 8, 8  # predictable ids 0..7 (<unk>=0, </s>=1), <s>=8
# The fake model's favourite next id for each input id: <s> -> 5 -> 3 -> 7 -> 2 -> </s>.
NEXT = {BOS: 5, 5: 3, 3: 7, 7: 2, 2: EOS_ID}


def table_logits(params, carry, ids_N):
  """p(NEXT[prev]) = 1/2 and p(<unk>) = 1/2; everything else impossible."""
  table = jnp.full((V + 1,), UNK_ID).at[jnp.array(list(NEXT))].set(jnp.array(list(NEXT.values())))
  nxt = table[ids_N]
  logits = jnp.full((ids_N.shape[0], V), -jnp.inf)
  logits = logits.at[jnp.arange(ids_N.shape[0]), nxt].set(math.log(0.5))
  return logits.at[:, UNK_ID].set(math.log(0.5)), carry + 1


@pytest.mark.parametrize("temperature", [1.0, 0.3, 5.0])
def test_fake_model_gives_the_exact_sequence_and_its_logprob(temperature):
  ids, logp, length = sampling.sample(
    table_logits,
    None,
    jnp.zeros(()),
    jax.random.PRNGKey(0),
    num_samples=3,
    max_len=8,
    bos_id=BOS,
    temperature=temperature,
  )
  # <unk> holds half the mass but is masked; the chain is fed its own samples back.
  assert ids.tolist() == [[5, 3, 7, 2, 1, 1, 1, 1]] * 3
  assert length.tolist() == [5, 5, 5]
  # The model's log-probability: five tokens at p = 1/2 each, </s> included, masking ignored.
  np.testing.assert_allclose(logp, [5 * math.log(0.5)] * 3, rtol=1e-6)


def test_sampling_is_deterministic_per_seed_and_never_emits_unk():
  uniform = lambda params, carry, ids_N: (jnp.zeros((ids_N.shape[0], V)), carry)
  run = lambda seed: sampling.sample(
    uniform, None, (), jax.random.PRNGKey(seed), num_samples=64, max_len=20, bos_id=BOS
  )
  ids0, logp0, len0 = run(0)
  ids0b, logp0b, _ = run(0)
  np.testing.assert_array_equal(ids0, ids0b)
  np.testing.assert_array_equal(logp0, logp0b)
  assert not np.array_equal(run(1)[0], ids0)
  assert not np.any(ids0 == UNK_ID)
  for row, n in zip(np.asarray(ids0), np.asarray(len0)):
    if EOS_ID in row:  # stops at the first </s>, then only </s>
      assert n == list(row).index(EOS_ID) + 1 and np.all(row[n:] == EOS_ID)
    else:
      assert n == 20
  # Uniform over 8 ids: each token costs ln 8, whatever was masked.
  np.testing.assert_allclose(logp0, np.asarray(len0) * -math.log(V), rtol=1e-5)


def test_top_k_keeps_only_the_k_best():
  rising = lambda params, carry, ids_N: (
    jnp.tile(jnp.arange(V, dtype=jnp.float32), (ids_N.shape[0], 1)),
    carry,
  )
  ids, _, length = sampling.sample(
    rising, None, (), jax.random.PRNGKey(0), num_samples=16, max_len=10, bos_id=BOS, top_k=1
  )
  assert np.all(ids == V - 1) and np.all(length == 10)  # greedy: never </s>, so truncated
  ids, _, _ = sampling.sample(
    rising, None, (), jax.random.PRNGKey(0), num_samples=16, max_len=10, bos_id=BOS, top_k=2
  )
  assert set(np.unique(ids)) == {V - 2, V - 1}


@pytest.mark.parametrize(
  "temperature,top_k,match",
  [(0.0, None, "temperature"), (1e-4, None, "temperature"), (1.0, 0, "top_k"), (1.0, V, "top_k")],
)
def test_invalid_settings_are_refused(temperature, top_k, match):
  with pytest.raises(ConfigError, match=match):
    sampling.validate(temperature, top_k, V)


def test_sample_from_a_trained_workdir_reports_the_models_logprob(tmp_path):
  from configs import window as window_configs
  from lm_jax import train

  config = window_configs.get_config("ptb,tiny")
  config.train.num_steps = 3
  train.train_and_evaluate(config, str(tmp_path))
  samples = sampling.sample_from_workdir(
    str(tmp_path), num_samples=4, temperature=0.8, seed=3, max_len=12
  )
  again = sampling.sample_from_workdir(
    str(tmp_path), num_samples=4, temperature=0.8, seed=3, max_len=12
  )
  assert samples == again and len(samples) == 4
  cfg, model, params, vocab = sampling.load_model(str(tmp_path))
  for s in samples:
    assert UNK_ID not in s.ids and s.truncated == (s.ids[-1] != EOS_ID)
    inputs = jnp.asarray([[vocab.bos_id, *s.ids[:-1]]], jnp.int32)
    logits, _ = model.apply(params, model.init_carry(cfg, 1), inputs, cfg)
    logp = jax.nn.log_softmax(logits[0])[jnp.arange(len(s.ids)), jnp.asarray(s.ids)].sum()
    assert s.logprob == pytest.approx(float(logp), rel=1e-4)
    assert s.text == vocab.detokenize(s.ids)
