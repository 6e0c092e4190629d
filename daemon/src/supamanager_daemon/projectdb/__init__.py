"""The project's own database, reached by the daemon directly: queries, migrations, login roles."""

from .pools import DatabaseUnavailable, ProjectDatabases, ProjectDbError, QueryTimeout, ResultTooLarge, SqlError, Target
from .targets import project_target

__all__ = [
    "DatabaseUnavailable",
    "ProjectDatabases",
    "ProjectDbError",
    "QueryTimeout",
    "ResultTooLarge",
    "SqlError",
    "Target",
    "project_target",
]
