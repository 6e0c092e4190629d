"""logs.all's reading of Logflare's SQL and of the engine's log stream (fleet/logs.py), without an engine;
the route on a real project's containers: test_conformance.py (the live project's storage log)."""

from __future__ import annotations

import struct

import pytest
from supamanager_daemon.errors import InvalidRequest
from supamanager_daemon.fleet import logs


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (None, (sorted(logs.SOURCES), None, 100)),
        ("select id, timestamp, event_message from edge_logs limit 5", (["edge_logs"], None, 5)),
        (
            "select * from postgres_logs where event_message ILIKE '%it''s down%' order by timestamp desc",
            (["postgres_logs"], "it's down", 100),
        ),
        (
            "select t.event_message from `auth_logs` as t cross join unnest(metadata) "
            "where regexp_contains(event_message, 'user (signed|in)') limit 99999",
            (["auth_logs"], "user (signed|in)", 1000),  # a pattern is plain text; the limit is capped
        ),
        (
            "select 1 from function_edge_logs union all select 1 from function_logs",
            (["function_edge_logs", "function_logs"], None, 100),
        ),
    ],
)
def test_the_sql_names_the_sources_the_text_and_the_limit(sql, expected):
    assert logs.parse_query(sql) == expected


@pytest.mark.parametrize(
    "sql", ["select 1", "select 1 from nope_logs", "select 1 from edge_logs union all select 1 from x_logs"]
)
def test_a_query_without_a_known_source_is_refused_naming_sql(sql):
    with pytest.raises(InvalidRequest) as refused:
        logs.parse_query(sql)
    assert refused.value.details == {"field": "sql"}


def frame(stream: int, text: str) -> bytes:
    data = text.encode()
    return struct.pack(">BxxxI", stream, len(data)) + data


def test_the_engines_stream_becomes_rows_newest_first_holding_the_text():
    stream = frame(1, "2026-12-02T19:00:00.123456789Z standin storage: listening on port 5000\n")
    stream += frame(2, "2026-12-02T19:00:01.5Z error handling GET /x\n2026-12-02T19:00:02Z listening again\n")
    found = logs.lines(stream)
    assert [line for _, line in found] == [
        "standin storage: listening on port 5000",
        "error handling GET /x",
        "listening again",
    ]
    assert logs.lines(b"2026-12-02T19:00:00Z a tty's line\n") == [("2026-12-02T19:00:00Z", "a tty's line")]
    rows = logs.rows({"storage": found}, "listening", 10)
    assert [(r["timestamp"], r["event_message"]) for r in rows] == [
        (1796238002000000, "listening again"),
        (1796238000123456, "standin storage: listening on port 5000"),
    ]
    assert rows[0]["service"] == "storage" and len(rows[0]["id"]) == 36 and rows[0]["id"] != rows[1]["id"]
    assert len(logs.rows({"storage": found}, None, 2)) == 2
