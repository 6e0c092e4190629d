"""The project's own database, reached by the daemon directly: queries, migrations, login roles."""

from .pools import DatabaseUnavailable, ProjectDatabases, ProjectDbError, QueryTimeout, ResultTooLarge, SqlError, Target

__all__ = [
    "DatabaseUnavailable",
    "ProjectDatabases",
    "ProjectDbError",
    "QueryTimeout",
    "ResultTooLarge",
    "SqlError",
    "Target",
]
