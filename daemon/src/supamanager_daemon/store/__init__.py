"""The store: SQLite (the default) behind one interface, and its own errors."""

from .errors import HealingDisabled, OperationInProgress, OperationNotFound, ProjectNotFound, RefTaken
from .sqlite import Store, now_iso

__all__ = [
    "HealingDisabled",
    "OperationInProgress",
    "OperationNotFound",
    "ProjectNotFound",
    "RefTaken",
    "Store",
    "now_iso",
]
