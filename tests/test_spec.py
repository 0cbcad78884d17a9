"""The run spec: one parse of the whole config, defaults in one place, errors naming the key."""

import dataclasses

import ml_collections
import pytest

from configs import base_config
from configs import ngram as ngram_configs
from configs import rnn as rnn_configs
from lm_jax import spec
from lm_jax.errors import ConfigError, LMJaxError
from lm_jax.ngram.spec import NGramSpec, parse_ngram


def test_config_files_take_their_defaults_from_the_spec():
  c = base_config()
  assert dict(c.train) == dataclasses.asdict(spec.TrainConfig())
  assert dict(c.model) == dataclasses.asdict(spec.ModelSettings())
  assert dict(c.eval) == dataclasses.asdict(spec.EvalConfig())
  assert dict(c.optim.plateau) == dataclasses.asdict(spec.PlateauSpec())
  parsed = spec.parse_neural(c)
  assert (parsed.train, parsed.model, parsed.eval) == (
    spec.TrainConfig(),
    spec.ModelSettings(),
    spec.EvalConfig(),
  )
  assert parsed.optim == spec.OptimConfig()
  ngram = parse_ngram(ngram_configs.get_config())
  assert dataclasses.replace(ngram, config={}) == NGramSpec(data=spec.DataSpec(min_count=1))


@pytest.mark.parametrize(
  "section,key,value,message",
  [
    ("train", "seq_len", 0, "train.seq_len must be >= 1"),
    ("train", "batch_size", "20", "train.batch_size='20' (str) must be int"),
    ("optim", "learning_rate", -1.0, "optim.learning_rate must be > 0"),
    ("data", "min_count", 0, "data.min_count must be >= 1"),
    ("data", "level", "byte", "data.level='byte'"),
    ("data", "name", "lm9b", "unknown corpus 'lm9b'"),
    ("model", "kind", "transformer", "model.kind='transformer'"),
    ("eval", "batch_size", 0, "eval.batch_size must be >= 1"),
  ],
)
def test_bad_values_in_a_config_file_are_refused_naming_the_key(section, key, value, message):
  config = rnn_configs.get_config("elman_ptb,tiny")
  with config.ignore_type():  # A config file can hold anything.
    config[section][key] = value
  with pytest.raises(LMJaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
    spec.parse_neural(config)


def test_unknown_keys_are_refused_in_every_section():
  config = rnn_configs.get_config("elman_ptb,tiny")
  config.unlock()
  config.train.num_epoch = 3
  with pytest.raises(ConfigError, match=r"unknown config.train keys \['num_epoch'\]"):
    spec.parse_neural(config)
  config = rnn_configs.get_config("elman_ptb,tiny")
  config.unlock()
  config.data.direcotry = "/tmp"
  with pytest.raises(ConfigError, match="unknown config.data keys"):
    spec.parse_neural(config)


@pytest.mark.parametrize(
  "key,value,message",
  [
    ("order", 0, "order=0 is outside 1..20"),
    ("order", 1_000_000, "order=1000000 is outside 1..20"),
    ("temperature", 0.0, "temperature must be >= 0.001"),
    ("num_samples", -1, "num_samples must be >= 0"),
    ("discount_fallback", "0.5,1", "discount_fallback needs three"),
    ("smoothing", "witten_bell", "smoothing='witten_bell'"),
    ("kn_statistics", "srilm", "kn_statistics='srilm'"),
    ("max_sample_len", 0, "max_sample_len must be >= 1"),
  ],
)
def test_ngram_values_out_of_range_are_refused(key, value, message):
  config = ngram_configs.get_config()
  config[key] = value
  with pytest.raises(ConfigError, match=message):
    parse_ngram(config)


def test_optional_fields_stay_settable_from_flags():
  c = spec.as_config(spec.DataSpec())
  c.dir = "/data"  # A None default is a typed reference, not a frozen None.
  c.max_size = 10
  with pytest.raises(TypeError):
    c.max_size = "ten"
  assert isinstance(c, ml_collections.ConfigDict)
