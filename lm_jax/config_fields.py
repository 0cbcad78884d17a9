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
  return {type(None): "None", float: "a finite number"}.get(kind, getattr(kind, "__name__", str(kind)))


def check_types(section: str, values: dict[str, Any], kinds: type | dict[str, Any]) -> None:
  """ConfigError naming ``section.key`` for the first value its field (dataclass or dict) cannot hold."""
  from lm_jax.errors import ConfigError  # Deferred: keeps this module import-light.
  hints = kinds if isinstance(kinds, dict) else typing.get_type_hints(kinds)
  for key, value in values.items():
    if key in hints and not _accepts(hints[key], value):
      name = f"{section}.{key}" if section else key
      raise ConfigError(f"{name}={value!r} ({type(value).__name__}) must be {_name(hints[key])}; "
                        f"fix the config file or pass --config.{name}=VALUE.")


def freeze(section: str, values: dict[str, Any], cls: type, ignore: frozenset = frozenset()):
  """``cls(**values)`` after refusing unknown keys and wrongly typed values, each named."""
  from lm_jax.errors import ConfigError  # Deferred, as above.
  fields = {f.name for f in dataclasses.fields(cls)} - set(ignore)
  unknown = set(values) - fields
  if unknown:
    raise ConfigError(f"unknown config.{section} keys {sorted(unknown)}; valid keys: {sorted(fields)}.")
  check_types(section, values, cls)
  return cls(**values)
