"""The store: SQLite (the default) behind one interface, and its own errors."""

from .errors import (
    HealingDisabled,
    OperationInProgress,
    OperationNotFound,
    OrganizationNotFound,
    ProjectLimit,
    ProjectNotFound,
    RefTaken,
    TokenNameTaken,
    TokenNotFound,
)
from .sqlite import DEFAULT_ORGANIZATION, Store, now_iso

__all__ = [
    "DEFAULT_ORGANIZATION",
    "HealingDisabled",
    "OperationInProgress",
    "OperationNotFound",
    "OrganizationNotFound",
    "ProjectLimit",
    "ProjectNotFound",
    "RefTaken",
    "Store",
    "TokenNameTaken",
    "TokenNotFound",
    "now_iso",
]
