"""Running trials: seeded batches, timed training, evaluation, atomic records."""

from .record import DONE, is_done, path_for, read, write_atomic
from .trial import GRAD_EQUIV, build_model, run_trial

__all__ = ["DONE", "GRAD_EQUIV", "build_model", "is_done", "path_for", "read", "run_trial", "write_atomic"]
