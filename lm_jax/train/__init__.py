"""Neural training, split by job: ``step`` (state and the jitted step), ``evaluate``, ``loop``.

The config is parsed by ``lm_jax.spec.parse_neural``; ``train_and_evaluate`` is the whole run.
"""

from lm_jax.train.evaluate import evaluate, token_logprobs
from lm_jax.train.loop import TIMING_KEYS, train_and_evaluate
from lm_jax.train.step import TrainState, init_state, state_shardings, train_step

__all__ = [
  "TIMING_KEYS",
  "TrainState",
  "evaluate",
  "init_state",
  "state_shardings",
  "token_logprobs",
  "train_and_evaluate",
  "train_step",
]
