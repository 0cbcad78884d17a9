"""Error types that name the cause of a failure and how to fix it."""


class LMJaxError(ValueError):
  """Base class: every message says what went wrong and what to do about it."""


class CorpusError(LMJaxError):
  """A corpus is missing, empty, undecodable, or fails its checksum."""


class VocabError(LMJaxError):
  """A vocabulary file is malformed or does not match the data or model."""


class ConfigError(LMJaxError):
  """A configuration value is invalid."""


class DiscountError(LMJaxError):
  """Kneser-Ney or Good-Turing discounts are undefined for these counts."""


class ArpaError(LMJaxError):
  """An ARPA file is malformed."""


class CheckpointError(LMJaxError):
  """A checkpoint does not match the model, vocabulary or config it is restored into."""


class WorkdirError(LMJaxError):
  """A run directory cannot be created or written."""


class NonFiniteLossError(LMJaxError):
  """Training produced a NaN or infinite loss."""
