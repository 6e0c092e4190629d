"""A project's logs, answered from its own containers' logs (no log store holds them): what
`GET .../analytics/endpoints/logs.all` takes of Logflare's SQL, and the engine's log stream read into
the document's rows.

Of the SQL, only what names the logs is read: the source after `from` (edge_logs, postgres_logs,
auth_logs, ...: each one a service of the project), a text that `event_message` must contain (`like
'%text%'`, `ilike`, or `regexp_contains(event_message, 'text')`, whose pattern is taken as plain text:
no user regex runs here) and a `limit`; the rest of the statement is not run. Without SQL, every
source. Rows: `{id, timestamp (microseconds since the epoch), event_message}`, newest first.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import struct
from typing import Any

from ..errors import InvalidRequest

# Logflare's sources of the platform -> the project's service whose container logs them.
SOURCES = {
    "edge_logs": "kong",
    "postgres_logs": "db",
    "auth_logs": "auth",
    "postgrest_logs": "rest",
    "storage_logs": "storage",
    "realtime_logs": "realtime",
    "function_logs": "functions",
    "function_edge_logs": "functions",
    "supavisor_logs": "supavisor",
}
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000

_FROM = re.compile(r"\bfrom\s+`?([A-Za-z_][A-Za-z0-9_.]*)`?", re.IGNORECASE)
_TEXT = re.compile(
    r"(?:event_message\s+i?like\s+'%?((?:[^'%\\]|'')*)%?')|(?:regexp_contains\s*\(\s*event_message\s*,\s*r?'((?:[^'\\]|'')*)'\s*\))",
    re.IGNORECASE,
)
_LIMIT = re.compile(r"\blimit\s+([0-9]{1,9})\b", re.IGNORECASE)


def parse_query(sql: str | None) -> tuple[list[str], str | None, int]:
    """(the sources, the text event_message must contain or None, the row limit) of a logs query."""
    if not sql:
        return sorted(SOURCES), None, DEFAULT_LIMIT
    sources = [m.group(1).lower().rsplit(".", 1)[-1] for m in _FROM.finditer(sql)]
    if not sources:
        raise InvalidRequest(
            "query parameter 'sql' names no log source (from edge_logs, ...)", code="invalid_value", field="sql"
        )
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        known = ", ".join(sorted(SOURCES))
        raise InvalidRequest(
            f"query parameter 'sql' names an unknown log source {unknown[0][:64]!r}: one of {known}",
            code="invalid_value",
            field="sql",
        )
    text = _TEXT.search(sql)
    found = None if text is None else (text.group(1) if text.group(1) is not None else text.group(2)).replace("''", "'")
    limit = _LIMIT.search(sql)
    return sorted(set(sources)), found or None, min(int(limit.group(1)), MAX_LIMIT) if limit else DEFAULT_LIMIT


def lines(stream: bytes) -> list[tuple[str, str]]:
    """(Docker's RFC 3339 timestamp, the line) of each line of a container's logs: the multiplexed
    stream of a container without a TTY (8-byte frame headers), or plain text of one with a TTY."""
    text = bytearray()
    if stream[:1] in (b"\x00", b"\x01", b"\x02") and len(stream) >= 8 and stream[1:4] == b"\x00\x00\x00":
        pos = 0
        while pos + 8 <= len(stream):
            (size,) = struct.unpack(">I", stream[pos + 4 : pos + 8])
            text.extend(stream[pos + 8 : pos + 8 + size])
            pos += 8 + size
    else:
        text.extend(stream)
    out = []
    for line in text.decode("utf-8", "replace").splitlines():
        stamp, _, message = line.partition(" ")
        if stamp:
            out.append((stamp, message))
    return out


def microseconds(stamp: str) -> int:
    """Docker's RFC 3339 timestamp (nanoseconds, Z) as microseconds since the epoch."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC).timestamp()
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def rows(service_lines: dict[str, list[tuple[str, str]]], text: str | None, limit: int) -> list[dict[str, Any]]:
    """The document's rows of every service's lines holding text, newest first, at most limit."""
    found = []
    for service, items in service_lines.items():
        for stamp, message in items:
            if text is None or text in message:
                at = microseconds(stamp)
                key = hashlib.sha256(f"{service}\0{stamp}\0{message}".encode()).hexdigest()
                found.append({"id": f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:32]}", "timestamp": at,
                              "event_message": message, "service": service})  # fmt: skip
    found.sort(key=lambda row: row["timestamp"], reverse=True)
    return found[:limit]
