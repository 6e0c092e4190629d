"""JSON-lines logs for supamanagerd: one object per line with time, level, logger, message, and the
operation id and project ref the line is about (from a context variable set per job and per request).

Secrets: log calls never pass one, and as a second line of defence every registered secret value
(the API token) is replaced by "***" in the message and in the exception text before it is written.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys

from aiohttp import web

_operation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("operation_id", default=None)
_project_ref: contextvars.ContextVar[str | None] = contextvars.ContextVar("project_ref", default=None)

REDACTED = "***"


def bind(*, operation_id: str | None = None, project_ref: str | None = None) -> None:
    """Tag every log line of the current task (a job, a request) with these ids."""
    if operation_id is not None:
        _operation_id.set(operation_id)
    if project_ref is not None:
        _project_ref.set(project_ref)


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        # Short values would redact innocent text; real tokens are long.
        self.secrets = tuple(s for s in secrets if s and len(s) >= 8)

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        op_id = getattr(record, "operation_id", None) or _operation_id.get()
        ref = getattr(record, "project_ref", None) or _project_ref.get()
        if op_id:
            entry["operation_id"] = op_id
        if ref:
            entry["project_ref"] = ref
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(JsonFormatter):
    """Plain lines for a terminal (--log-format text), redacted like the JSON ones."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(secrets)
        self._plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(self._plain.format(record))


def configure(level: str = "INFO", secrets: tuple[str, ...] = (), stream=None, text: bool = False) -> logging.Handler:
    """Send every log record (ours, aiohttp's access log) to `stream` (stderr) as JSON lines, or as
    plain lines with text=True; registered secrets are masked either way."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter((TextFormatter if text else JsonFormatter)(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def add_secret(secret: str) -> None:
    """Redact one more value in every JSON handler of the root logger (e.g. a generated token)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter) and secret and len(secret) >= 8:
            handler.formatter.secrets += (secret,)


@web.middleware
async def context_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Tag the log lines of a request with the project ref / operation id in its path."""
    info = request.match_info
    tokens = (_project_ref.set(info.get("ref")), _operation_id.set(info.get("op_id")))
    try:
        return await handler(request)
    finally:
        _project_ref.reset(tokens[0])
        _operation_id.reset(tokens[1])
