"""User-facing errors: each carries one clear message and becomes a non-zero exit."""


class PmlOpsError(Exception):
    """Base class for errors a user can hit and fix (bad params, missing data, ...)."""


class ConfigError(PmlOpsError):
    """params.yaml is missing, malformed or holds an invalid value."""


class DataError(PmlOpsError):
    """A dataset file is missing, corrupt, truncated or fails its checksum."""


class DownloadError(DataError):
    """No mirror could deliver a valid copy of a file."""


class TuningError(PmlOpsError):
    """An Optuna study cannot be opened, run or summarised (storage unreachable, no trial done)."""


class TrialError(PmlOpsError):
    """One tuning trial cannot finish (e.g. a non-finite objective); the study goes on."""
