"""Shapes of the Database backups tag, as the Management API document has them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .common import Request, omitted

BackupStatus = Literal["COMPLETED", "FAILED", "PENDING", "REMOVED", "ARCHIVED", "CANCELLED"]


class V1Backup(BaseModel):
    id: int = Field(description="The backup's id: its start, in unix seconds.")
    is_physical_backup: bool = Field(description="Always true here: every backup holds a base backup (pg_basebackup).")
    status: BackupStatus
    inserted_at: str = Field(description="When it started (ISO 8601, UTC).")


class V1PhysicalBackupData(BaseModel):
    # Left out while there is no completed backup (upstream: optional integers).
    earliest_physical_backup_date_unix: int | None = omitted(
        "The first second a point-in-time restore can reach (the end of the oldest completed backup)."
    )
    latest_physical_backup_date_unix: int | None = omitted("The end of the newest completed backup.")


class V1BackupsResponse(BaseModel):
    region: str
    walg_enabled: bool = Field(description="False: WAL is streamed with pg_receivewal, not archived by wal-g.")
    pitr_enabled: bool = Field(description="True while the project's backup agent streams its WAL.")
    backups: list[V1Backup]
    physical_backup_data: V1PhysicalBackupData


# restore.yml takes a backup id of at most 12 digits (unix seconds).
BACKUP_ID_MAX = 999_999_999_999


class V1RestorePitrBody(Request):
    recovery_time_target_unix: int = Field(
        ge=0,
        le=BACKUP_ID_MAX,
        description="The second to restore the database to (unix time), inside the window the backups list shows.",
    )


class V1RestoreBackupBody(Request):
    id: int = Field(ge=0, le=BACKUP_ID_MAX, description="The backup to restore, as the backups list names it.")
