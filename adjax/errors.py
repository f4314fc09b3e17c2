"""The error a bad config, bad data or a bad workdir raises: one line that names the value and what would be valid."""


class ConfigError(ValueError):
  """A config that cannot work; the message names the field and the valid values."""
