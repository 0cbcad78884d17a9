"""Type checks of config values against the frozen dataclasses they become, before any use.

``--config.x=y`` flags are type-checked by ml_collections, but a config file can
hold anything; a string batch size must be a ConfigError naming the field, not a
TypeError from a comparison deep inside validation.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

import ml_collections


def _accepts(kind, value: Any) -> bool:
  if typing.get_origin(kind) in (typing.Union, types.UnionType):
    return any(_accepts(k, value) for k in typing.get_args(kind))
  if kind is type(None):
    return value is None
  if kind is bool:
    return isinstance(value, bool)
  if kind is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if kind is float:  # ints are fine (learning_rate=1); NaN and inf never are.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
  if kind is str:
    return isinstance(value, str)
  return True  # Other annotations are checked by their own validation.


def _name(kind) -> str:
  if typing.get_origin(kind) in (typing.Union, types.UnionType):
    return " or ".join(_name(k) for k in typing.get_args(kind))
  return {type(None): "None", float: "a finite number"}.get(
    kind, getattr(kind, "__name__", str(kind))
  )


def check_types(section: str, values: dict[str, Any], kinds: type | dict[str, Any]) -> None:
  """ConfigError naming ``section.key`` for the first value its field (dataclass or dict) cannot hold."""
  from lm_jax.errors import ConfigError  # Deferred: keeps this module import-light.

  hints = kinds if isinstance(kinds, dict) else typing.get_type_hints(kinds)
  for key, value in values.items():
    if key in hints and not _accepts(hints[key], value):
      name = f"{section}.{key}" if section else key
      raise ConfigError(
        f"{name}={value!r} ({type(value).__name__}) must be {_name(hints[key])}; "
        f"fix the config file or pass --config.{name}=VALUE."
      )


def freeze(section: str, values: dict[str, Any], cls: type, ignore: frozenset = frozenset()):
  """``cls(**values)`` after refusing unknown keys and wrongly typed values, each named."""
  from lm_jax.errors import ConfigError  # Deferred, as above.

  fields = {f.name for f in dataclasses.fields(cls)} - set(ignore)
  unknown = set(values) - fields
  if unknown:
    where = f"config.{section}" if section else "config"
    raise ConfigError(f"unknown {where} keys {sorted(unknown)}; valid keys: {sorted(fields)}.")
  check_types(section, values, cls)
  return cls(**values)


def as_config(obj) -> ml_collections.ConfigDict:
  """A ConfigDict of a spec dataclass's fields; optional fields stay settable from flags."""
  out = {}
  hints = typing.get_type_hints(type(obj))
  for f in dataclasses.fields(obj):
    if not f.init or f.name == "config":
      continue
    value = getattr(obj, f.name)
    if dataclasses.is_dataclass(value):
      out[f.name] = as_config(value)
    elif type(None) in typing.get_args(hints[f.name]):  # Optional: a typed, settable reference.
      kind = next(k for k in typing.get_args(hints[f.name]) if k is not type(None))
      out[f.name] = ml_collections.FieldReference(value, field_type=kind)
    else:
      out[f.name] = value
  return ml_collections.ConfigDict(out)


def section(config, key: str) -> dict[str, Any]:
  """``config[key]`` as a plain dict ({} when absent); a non-section value is a ConfigError."""
  from lm_jax.errors import ConfigError  # Deferred, as above.

  value = config.get(key) if hasattr(config, "get") else None
  if value is None:
    return {}
  if not hasattr(value, "keys"):
    raise ConfigError(f"config.{key} must be a section of fields, got {value!r}.")
  return {k: value[k] for k in value.keys()}


def at_least(section: str, spec, names: tuple[str, ...], low: int = 1) -> None:
  """ConfigError naming ``section.name`` for the first field below ``low`` (None is allowed)."""
  from lm_jax.errors import ConfigError  # Deferred, as above.

  for name in names:
    value = getattr(spec, name)
    if value is not None and value < low:
      raise ConfigError(f"{section}.{name} must be >= {low}, got {value}.")


def one_of(key: str, value, choices: tuple[str, ...]) -> None:
  """ConfigError unless ``value`` is one of ``choices``."""
  from lm_jax.errors import ConfigError  # Deferred, as above.

  if value not in choices:
    raise ConfigError(f"{key}={value!r}; use one of {', '.join(map(repr, choices))}.")
