"""The run spec: a whole config parsed and validated once, before a corpus is read or a file written.

Every config section becomes a frozen dataclass whose field defaults are the
only defaults in lm_jax (``configs/`` builds its ConfigDicts from them with
``as_config``).  ``parse_neural`` (and ``ngram.spec.parse_ngram``) refuse
unknown keys, wrong types (also from config files) and out-of-range values
with a ``ConfigError`` that names the key as the user typed it.  Nothing here
imports jax: parsing is instant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from lm_jax.config_fields import as_config, at_least, check_types, freeze, one_of, section
from lm_jax.errors import ConfigError
from lm_jax.optim_spec import OptimConfig, PlateauSpec, parse_optim
from lm_jax.output_spec import check_output

# Re-exported: configs/ builds its ConfigDicts from the specs here.
__all__ = ["OptimConfig", "PlateauSpec", "as_config", "parse_optim"]

MODEL_KINDS = ("window", "elman", "lstm", "gru")
ACTIVATIONS = ("tanh", "sigmoid")
GRADS = ("autodiff", "manual")
NORMALIZERS = ("sequences", "tokens")
LEVELS = ("word", "char")
MIN_TEMPERATURE = 1e-3  # Below this exp(logits / T) overflows float32; top_k=1 is greedy.


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """``config.data``: which corpus, and how its vocabulary is built."""

  name: str | None = "pydoc"  # registered corpus: ptb, tinyshakespeare, pydoc (embedded)
  dir: str | None = None  # local directory (registered corpus files, or train/valid/test.txt)
  file: str | None = None  # one raw text file, split contiguously 90/5/5
  level: str | None = None  # "word" or "char"; None: the corpus default
  download: bool = True  # fetch a registered corpus into the cache if it is not found
  min_count: int | None = None  # rarer training types become <unk>; None: 3 for lm1b, else 1
  max_size: int | None = None  # cap on vocabulary size (with specials)


@dataclasses.dataclass(frozen=True)
class ModelSettings:
  """``config.model``: everything but the vocabulary (``models.ModelConfig`` adds it)."""

  kind: str = "lstm"
  embed_dim: int = 200
  hidden_dim: int = 200
  num_layers: int = 2
  context: int = 4  # window: tokens of history (the n - 1 of an n-gram)
  activation: str = "tanh"  # window hidden layer and Elman cell
  dropout: float = 0.0  # on non-recurrent connections only (Zaremba et al. 2014)
  tie_weights: bool = False  # softmax reuses embed[:out_vocab] (needs embed_dim == hidden_dim)
  init_scale: float = 0.1  # weights ~ U(-init_scale, init_scale); biases 0
  unroll: int = 1  # lax.scan unroll factor
  reset_at_eos: bool = False  # sentence-independent RNN: state resets where the input is <s>
  remat: bool = False  # jax.checkpoint the scan body: less memory, more compute
  grad: str = "autodiff"  # "manual": hand-derived BPTT (lm_jax.models.bptt)
  projection: int | None = None  # LSTMP (Sak et al. 2014): h = W_p (o * tanh(c)), this size
  output: str = "full"  # full | adaptive | class | sampled (lm_jax.models.output_layers)
  adaptive_cutoffs: str = (
    ""  # adaptive: "2000,6000": head ids < 2000, clusters [2000, 6000), [6000, V)
  )
  adaptive_div: float = 4.0  # adaptive: cluster i projects to output_dim // div ** (i + 1)
  adaptive_dropout: float = 0.0  # adaptive: dropout on each cluster's projection (training)
  num_classes: int = 100  # class: frequency bins of Mikolov's RNNLM toolkit
  num_sampled: int = 1024  # sampled: distinct log-uniform candidates per step
  sampled_loss: str = "softmax"  # sampled: "softmax" (Jean et al. 2015) or "blackout" (Ji et al.)
  maxent_order: int = 0  # RNN + MaxEnt (Mikolov et al. 2011): n-gram features up to this order
  maxent_hash_size: int = 1 << 22  # MaxEnt: weights in the hash table

  @property
  def output_dim(self) -> int:
    """The size of what a layer passes on (and the softmax reads): the projection, or H."""
    return self.projection or self.hidden_dim

  @property
  def cutoffs(self) -> tuple[int, ...]:
    """``adaptive_cutoffs`` as ints (the vocabulary size closes the last cluster)."""
    return tuple(int(x) for x in self.adaptive_cutoffs.split(",") if x.strip())


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """``config.train``, frozen."""

  batch_size: int = 20
  seq_len: int = 35  # truncated-BPTT segment length
  num_epochs: int = 13
  num_steps: int | None = None  # overrides num_epochs when set
  carry_state: bool = True  # carry the RNN state across segments (stop_gradient between)
  # "bfloat16": embedding and recurrent layers compute in bfloat16 from float32 parameters
  # (gradients, optimizer state and the output layer stay float32); "float32": all float32.
  compute_dtype: str = "float32"
  loss_normalizer: str = (
    "sequences"  # Σnll / B (Zaremba: sum over time, mean over batch) or / (B·T)
  )
  log_every_steps: int = 100
  checkpoint_every_steps: int = 1000  # and at every epoch end
  keep_checkpoints: int = 2
  eval_every_epochs: int = 1
  eval_every_steps: int | None = None  # also evaluate valid every this many steps (learning curves)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """``config.eval``."""

  batch_size: int = 10
  dump_tokens: bool = False  # write {valid,test}.tokens.tsv (per-token ln p, for interpolation)


@dataclasses.dataclass(frozen=True)
class MeshSpec:
  """``config.mesh``: how the devices are arranged (``lm_jax.parallel``).

  ``model`` devices split each vocabulary-sized parameter (embedding rows, output
  columns, adaptive head and tail columns) and its optimizer state; the
  other ``devices / model`` form the data axis that splits the batch.  It changes
  where numbers live, not the numbers: a run may resume on another mesh.
  """

  model: int = 1


@dataclasses.dataclass(frozen=True)
class NeuralSpec:
  """A validated neural training config: the frozen pieces cross into jitted code."""

  seed: int
  data: DataSpec
  model: ModelSettings
  optim: OptimConfig
  train: TrainConfig
  eval: EvalConfig
  config: dict = dataclasses.field(compare=False, repr=False)  # as given, for config.json
  mesh: MeshSpec = MeshSpec()


def parse_data(section: dict[str, Any]) -> DataSpec:
  """``config.data`` checked without reading anything (the corpus module checks the files)."""
  data = freeze("data", section, DataSpec)
  if data.level is not None:
    one_of("data.level", data.level, LEVELS)
  at_least("data", data, ("min_count",))
  at_least("data", data, ("max_size",), low=3)  # <unk>, </s>, <s>
  from lm_jax.data.corpus import check_source  # Deferred: keeps this module import-light.

  check_source(data.name, data.dir, data.file)
  if data.min_count is None:  # The corpus's convention: lm1b keeps words seen >= 3 times.
    data = dataclasses.replace(data, min_count=3 if data.name == "lm1b" else 1)
  return data


def recorded(config: ml_collections.ConfigDict, data: DataSpec) -> dict:
  """The config as recorded (config.json, checkpoint meta): defaults that depend on the
  corpus resolved, so a run records the numbers it used."""
  out = config.to_dict()
  out.setdefault("data", {})["min_count"] = data.min_count
  return out


def parse_model(section: dict[str, Any]) -> ModelSettings:
  """``config.model``, validated."""
  cfg = freeze("model", section, ModelSettings)
  one_of("model.kind", cfg.kind, MODEL_KINDS)
  one_of("model.activation", cfg.activation, ACTIVATIONS)
  one_of("model.grad", cfg.grad, GRADS)
  at_least("model", cfg, ("embed_dim", "hidden_dim", "num_layers", "context", "unroll"))
  if not 0.0 <= cfg.dropout < 1.0:
    raise ConfigError(f"model.dropout must be in [0, 1), got {cfg.dropout}.")
  if cfg.init_scale <= 0:
    raise ConfigError(f"model.init_scale must be > 0, got {cfg.init_scale}.")
  at_least("model", cfg, ("projection",))
  if cfg.projection is not None and cfg.kind != "lstm":
    raise ConfigError(
      f"model.projection is an LSTM projection (LSTMP); model.kind={cfg.kind!r} "
      "has none: unset model.projection or use model.kind='lstm'."
    )
  if cfg.tie_weights and cfg.embed_dim != cfg.output_dim:
    what = "model.projection" if cfg.projection else "model.hidden_dim"
    raise ConfigError(
      f"model.tie_weights needs model.embed_dim == {what} (got {cfg.embed_dim} "
      f"and {cfg.output_dim}): the softmax reuses the embedding matrix. Set them equal "
      "or set model.tie_weights=False."
    )
  check_output(cfg)
  if cfg.kind == "window" and cfg.num_layers != 1:
    raise ConfigError("the fixed-window model has one hidden layer; set model.num_layers=1.")
  if cfg.grad == "manual":
    bad = [
      msg
      for cond, msg in (
        (cfg.kind != "elman", f"model.kind={cfg.kind!r} (needs 'elman')"),
        (cfg.num_layers != 1, f"model.num_layers={cfg.num_layers} (needs 1)"),
        (cfg.dropout > 0, f"model.dropout={cfg.dropout} (needs 0)"),
        (cfg.tie_weights, "model.tie_weights=True (needs False)"),
        (cfg.reset_at_eos, "model.reset_at_eos=True (needs False)"),
        (cfg.output != "full", f"model.output={cfg.output!r} (needs 'full')"),
        (cfg.maxent_order > 0, f"model.maxent_order={cfg.maxent_order} (needs 0)"),
      )
      if cond
    ]
    if bad:
      raise ConfigError(
        "model.grad='manual' is the hand-derived BPTT of a 1-layer untied Elman "
        "RNN without dropout; this config has "
        + ", ".join(bad)
        + ". Fix those or use model.grad='autodiff'."
      )
  return cfg


def parse_train(section: dict[str, Any]) -> TrainConfig:
  train = freeze("train", section, TrainConfig)
  one_of("train.loss_normalizer", train.loss_normalizer, NORMALIZERS)
  one_of("train.compute_dtype", train.compute_dtype, ("float32", "bfloat16"))
  at_least(
    "train",
    train,
    (
      "batch_size",
      "seq_len",
      "num_epochs",
      "num_steps",
      "log_every_steps",
      "checkpoint_every_steps",
      "keep_checkpoints",
      "eval_every_epochs",
      "eval_every_steps",
    ),
  )
  return train


def _seed(config) -> int:
  seed = config.get("seed", 0)
  check_types("", {"seed": seed}, {"seed": int})
  return seed


def parse_neural(config: ml_collections.ConfigDict) -> NeuralSpec:
  """The whole training config, validated; raises ConfigError naming the key and the fix."""
  unknown = set(config.keys()) - {"seed", "data", "model", "optim", "train", "eval", "mesh"}
  if unknown:
    raise ConfigError(
      f"unknown config keys {sorted(unknown)}; a training config has seed, data, "
      "model, optim, train, eval, mesh."
    )
  mesh = freeze("mesh", section(config, "mesh"), MeshSpec)
  at_least("mesh", mesh, ("model",))
  train = parse_train(section(config, "train"))
  evals = freeze("eval", section(config, "eval"), EvalConfig)
  at_least("eval", evals, ("batch_size",))
  model = parse_model(section(config, "model"))
  if model.kind == "window" and not train.carry_state:
    # A reset fills the window with <s> mid-sentence during training only, not in evaluation.
    raise ConfigError(
      "the window model needs train.carry_state=True (its state is the last "
      "words; resetting it would make every segment look like a sentence start)."
    )
  if train.compute_dtype != "float32" and model.grad == "manual":
    raise ConfigError(
      "model.grad='manual' (hand-derived BPTT) computes in float32 only; set "
      "train.compute_dtype='float32' or model.grad='autodiff'."
    )
  optim = parse_optim(section(config, "optim"))
  if optim.sparse_embedding and (
    model.kind == "window" or model.tie_weights or model.grad == "manual"
  ):
    raise ConfigError(
      "optim.sparse_embedding needs a recurrent model (elman, lstm, gru) whose embedding is "
      "used only as input (model.tie_weights=False, model.grad='autodiff'); set "
      "optim.sparse_embedding=False."
    )
  if optim.maxent_learning_rate and not model.maxent_order:
    raise ConfigError(
      "optim.maxent_learning_rate trains MaxEnt weights, but model.maxent_order=0 has none; "
      "set model.maxent_order >= 2 or optim.maxent_learning_rate=0."
    )
  data = parse_data(section(config, "data"))
  return NeuralSpec(
    _seed(config), data, model, optim, train, evals, recorded(config, data), mesh=mesh
  )


def check_sampling(temperature: float, num_samples: int, max_len: int, key: str = "") -> None:
  """Sampling settings that can produce a proper distribution, or a ConfigError."""
  if not temperature >= MIN_TEMPERATURE:
    raise ConfigError(
      f"{key}temperature must be >= {MIN_TEMPERATURE}, got {temperature}; for "
      "greedy decoding use top_k=1."
    )
  if num_samples < 0:
    raise ConfigError(f"{key}num_samples must be >= 0, got {num_samples}.")
  if max_len < 1:
    raise ConfigError(f"{key}max_sample_len must be >= 1, got {max_len}.")
