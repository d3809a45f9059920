"""User-facing errors: each carries one clear message and becomes a non-zero exit."""


class PmlOpsError(Exception):
    """Base class for errors a user can hit and fix (bad params, missing data, ...)."""


class ConfigError(PmlOpsError):
    """params.yaml is missing, malformed or holds an invalid value."""


class DataError(PmlOpsError):
    """A dataset file is missing, corrupt, truncated or fails its checksum."""


class DownloadError(DataError):
    """No mirror could deliver a valid copy of a file."""


class TrackingError(PmlOpsError):
    """The MLflow tracking store cannot be reached or used."""


class ReportError(PmlOpsError):
    """A report cannot be built (a figure is missing or not a PNG, ...)."""


class ArchitectureError(ConfigError):
    """A model architecture cannot be built (e.g. kernel/stride/padding that do not fit 28x28)."""


class NonFiniteLossError(PmlOpsError):
    """Training produced a NaN or infinite loss; the message names the epoch and the batch."""

    def __init__(self, epoch: int, batch: int, value: float) -> None:
        super().__init__(
            f"non-finite loss ({value}) at epoch {epoch}, batch {batch}: lower the learning rate "
            "or change the architecture"
        )
        self.epoch = epoch
        self.batch = batch
        self.value = value


class CheckpointError(PmlOpsError):
    """A checkpoint is unreadable or belongs to a different configuration."""


class TuningError(PmlOpsError):
    """An Optuna study cannot be opened, run or summarised (storage unreachable, no trial done)."""


class TrialError(PmlOpsError):
    """One tuning trial cannot finish (e.g. a non-finite objective); the study goes on."""
