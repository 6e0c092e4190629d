"""The copy of the official Management API document that the conformance checks read."""

from __future__ import annotations

import json

from official_check import DOCUMENT, SHARED_DOCUMENT

METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_copy_is_the_whole_official_document_and_matches_the_teams_reference():
    operations = [m for item in json.loads(DOCUMENT.read_text())["paths"].values() for m in item if m in METHODS]
    assert len(operations) == 163
    # Beside the team's checkout (and in CI) the reference is there: the copy must be the same file.
    if SHARED_DOCUMENT.is_file():
        assert DOCUMENT.read_bytes() == SHARED_DOCUMENT.read_bytes()
