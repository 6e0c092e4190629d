"""The settings' two sides agree: the daemon's shapes (shapes/auth.py, shapes/settings.py) take exactly
the settings the project role renders (roles/project/vars/main.yml), with the same limits; the document's
auth fields are all answered, its PostgREST and Postgres fields all taken. What a change does on a real
project: test_functions.py; the answers against the
document: test_conformance.py."""

from __future__ import annotations

import pathlib

import pydantic
import pytest
import yaml
from official_check import document
from supamanager_daemon.shapes.auth import (
    AUTH_CONFIG_FIELDS,
    DEFAULTS,
    HONOURED,
    PROVIDERS,
    READ_ONLY_FIELDS,
    SECRET_FIELDS,
    AuthConfigResponse,
    UpdateAuthConfigBody,
)
from supamanager_daemon.shapes.database import UpdatePostgresConfigBody
from supamanager_daemon.shapes.rest import V1UpdatePostgrestConfigBody
from supamanager_daemon.shapes.settings import POSTGRES_FIELDS, POSTGREST_FIELDS, STORAGE_FIELDS

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLE_VARS = yaml.safe_load((REPO / "roles" / "project" / "vars" / "main.yml").read_text())


def role_fields() -> dict[str, dict]:
    fields = dict(ROLE_VARS["_supabase_auth_base_fields"])
    for p in ROLE_VARS["_supabase_auth_providers"]:
        fields[f"external_{p}_enabled"] = {"type": "bool"}
        fields[f"external_{p}_client_id"] = {"type": "str"}
        fields[f"external_{p}_secret"] = {"type": "str", "secret": True}
    return fields


def test_the_daemon_takes_exactly_the_settings_the_role_renders():
    fields = role_fields()
    assert tuple(ROLE_VARS["_supabase_auth_providers"]) == PROVIDERS
    assert set(HONOURED) == set(fields)
    kinds = {"bool": bool, "int": int, "str": str}
    assert {n: HONOURED[n][0] for n in HONOURED} == {n: kinds[f["type"]] for n, f in fields.items()}
    assert {n for n, f in fields.items() if f.get("secret")} == SECRET_FIELDS
    assert ROLE_VARS["_supabase_auth_base_fields"]["jwt_exp"]["max"] == 604800
    with pytest.raises(pydantic.ValidationError):
        UpdateAuthConfigBody.model_validate({"jwt_exp": 604801})


def test_every_field_of_the_document_is_answered_and_taken_as_it_says():
    schemas = document()["components"]["schemas"]
    assert tuple(schemas["AuthConfigResponse"]["properties"]) == AUTH_CONFIG_FIELDS
    assert set(UpdateAuthConfigBody.model_fields) == set(schemas["UpdateAuthConfigBody"]["properties"])
    assert set(AUTH_CONFIG_FIELDS) - set(UpdateAuthConfigBody.model_fields) == READ_ONLY_FIELDS
    taken = schemas["UpdateAuthConfigBody"]["properties"]
    for name in HONOURED:
        assert {"boolean": bool, "integer": int, "string": str}[taken[name]["type"]] is HONOURED[name][0], name
    # what the document does not let be null is answered with a value
    for name, spec in schemas["AuthConfigResponse"]["properties"].items():
        if not spec.get("nullable") or "enum" in spec:
            assert name in DEFAULTS and (DEFAULTS[name] in spec.get("enum", [DEFAULTS[name]])), name


def test_a_field_this_host_does_not_have_is_taken_only_as_null():
    assert UpdateAuthConfigBody.model_validate({"saml_enabled": None}).model_dump(exclude_none=True) == {}
    with pytest.raises(pydantic.ValidationError, match="not a setting this host can change"):
        UpdateAuthConfigBody.model_validate({"saml_enabled": True})
    answer = AuthConfigResponse.model_validate({**dict.fromkeys(AUTH_CONFIG_FIELDS), **DEFAULTS})
    assert answer.model_dump()["saml_enabled"] is None


@pytest.mark.parametrize(
    ("group", "ours"), [("postgrest", POSTGREST_FIELDS), ("storage", STORAGE_FIELDS), ("postgres", POSTGRES_FIELDS)]
)
def test_the_daemon_takes_the_other_settings_with_the_limits_the_role_checks(group, ours):
    role = {
        name: {k: v for k, v in spec.items() if k != "env"}
        for name, spec in ROLE_VARS[f"_supabase_{group}_fields"].items()
    }
    assert role == ours
    assert set(ROLE_VARS["_supabase_settings_fields"]) == {"auth", "postgrest", "storage", "postgres"}


def test_the_documents_postgrest_and_postgres_fields_are_all_taken_with_a_whole_value_pattern():
    schemas = document()["components"]["schemas"]
    assert set(V1UpdatePostgrestConfigBody.model_fields) == set(schemas["V1UpdatePostgrestConfigBody"]["properties"])
    assert set(UpdatePostgresConfigBody.model_fields) == set(schemas["UpdatePostgresConfigBody"]["properties"])
    assert UpdatePostgresConfigBody.model_validate({"work_mem": "8MB", "statement_timeout": "60s"}).work_mem == "8MB"
    for bad in ("8MB -c fsync=off", "x8MB", "8MB\n"):
        with pytest.raises(pydantic.ValidationError):
            UpdatePostgresConfigBody.model_validate({"work_mem": bad})
    with pytest.raises(pydantic.ValidationError):
        V1UpdatePostgrestConfigBody.model_validate({"db_extra_search_path": "public,$user"})
    assert V1UpdatePostgrestConfigBody.model_validate({"db_extra_search_path": ""}).db_extra_search_path == ""
