"""Shapes of the Database backups tag, as the Management API document has them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from .. import models
from .common import Query, Request, omitted

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


class V1BackupScheduleResponse(BaseModel):
    schedule_for: str = Field(description="Time of day of the daily backup, in UTC. Format: HH:MM:SS.")
    updated_at: str = Field(
        description="When the schedule was last set (ISO 8601); a project on the daemon's default: its creation."
    )


class V1UpdateBackupScheduleBody(Request):
    schedule_for: str = Field(description="Time of day of the daily backup, in UTC. Format: HH:MM:SS.")

    @field_validator("schedule_for")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not models.is_time_of_day(value):
            raise ValueError("Invalid schedule_for format: a time of day HH:MM:SS (UTC), e.g. 04:00:00")
        return value


class V1RestorePointPostBody(Request):
    name: str = Field(max_length=20, description="The restore point's name, unique in the project.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not models.RESTORE_POINT_RE.fullmatch(value):
            raise ValueError(
                "a restore point's name: 1 to 20 letters, digits, '.', '_' or '-', a letter or digit first"
            )
        return value


class RestorePointQuery(Query):
    name: str | None = Field(default=None, max_length=20, description="The restore point; omitted, the newest.")


class V1RestorePointResponse(BaseModel):
    name: str
    status: Literal["AVAILABLE", "PENDING", "REMOVED", "FAILED"] = Field(
        description="PENDING while its backup is taken; AVAILABLE once published and checked (a restore of"
        " that backup returns to it); FAILED when its backup failed or its checks did; REMOVED once its backup"
        " is gone (removed by hand: the retention keeps it)."
    )
    completed_on: str | None = Field(description="When the point was reached (the end of its base backup), ISO 8601.")
    backup_id: int | None = omitted("Ours: the backup that holds the point (POST .../backups/restore with it).")
