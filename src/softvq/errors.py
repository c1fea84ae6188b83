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
    """SIGINT/SIGTERM arrived; a checkpoint was saved and the run can be resumed.

    ``signum`` is the signal that stopped the run; the CLI exits with ``128 + signum``
    (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by it.
    """

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum

    def __reduce__(self):  # keep signum across process boundaries (compare --jobs)
        return type(self), (self.args[0], self.signum)


class TrainingDiverged(SoftVQError):
    """The loss (or a weight) became NaN or infinite; the last good checkpoint is kept."""
