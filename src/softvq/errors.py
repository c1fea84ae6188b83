"""User-facing errors: raised for bad input, printed by the CLI without a traceback."""

from __future__ import annotations


class SoftVQError(Exception):
    """A problem the user can fix (bad file, bad argument, bad config).

    The CLI prints ``error: <message>`` and exits with status 2 for these.
    """


class DataError(SoftVQError):
    """A dataset file is missing, truncated, corrupt or in the wrong format."""


class ConfigError(SoftVQError, ValueError):
    """A configuration value or file is invalid."""


class TrainingInterrupted(SoftVQError):
    """SIGINT/SIGTERM arrived; a checkpoint was saved and the run can be resumed (exit 130)."""


class TrainingDiverged(SoftVQError):
    """The loss (or a weight) became NaN or infinite; the last good checkpoint is kept."""
