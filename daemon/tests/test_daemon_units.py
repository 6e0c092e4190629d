"""Fast unit tests: status mapping, validation, settings, extra vars. No Docker, no Ansible."""

from __future__ import annotations

import pathlib
import re
import stat

import pytest
from conftest import REPO
from supamanager_daemon import models
from supamanager_daemon.api.routing import parse_body
from supamanager_daemon.errors import InvalidRequest
from supamanager_daemon.fleet.status import (
    ContainerView,
    group_by_project,
    observed_status,
    project_status,
    service_health,
)
from supamanager_daemon.operations.jobs import extravars_yaml
from supamanager_daemon.settings import Settings, SettingsError, ensure_api_token, load_settings
from supamanager_daemon.shapes.projects import V1CreateProjectBody


def c(service: str, state: str = "running", health: str | None = "healthy", ref: str = "r") -> ContainerView:
    return ContainerView(ref=ref, service=service, state=state, health=health)


# -- status mapping ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("containers", "expected", "status"),
    [
        ([], (), models.REMOVED),
        ([c("db"), c("kong", health=None)], (), models.ACTIVE_HEALTHY),
        ([c("db"), c("kong", health="starting")], (), models.COMING_UP),
        ([c("db"), c("kong", health="unhealthy")], (), models.ACTIVE_UNHEALTHY),
        ([c("db"), c("kong", state="exited", health=None)], (), models.ACTIVE_UNHEALTHY),
        ([c("db", state="exited", health=None), c("kong", state="exited", health=None)], (), models.INACTIVE),
        ([c("db", state="created", health=None)], (), models.INACTIVE),
        ([c("db", state="restarting", health=None)], (), models.ACTIVE_UNHEALTHY),
        # a service seen before has vanished
        ([c("db")], ("db", "kong"), models.ACTIVE_UNHEALTHY),
        ([c("db"), c("kong")], ("db", "kong"), models.ACTIVE_HEALTHY),
    ],
)
def test_project_status_maps_container_states(containers, expected, status):
    assert project_status(containers, expected) == status


def test_the_status_definition_is_the_collections_own():
    # One definition for the daemon and the role's status (filter project_status): a link to one file.
    from supamanager_daemon.fleet import _project_status

    assert pathlib.Path(_project_status.__file__).resolve() == REPO / "plugins" / "module_utils" / "_project_status.py"
    # A project whose files remain but whose containers are gone is REMOVED (not INACTIVE).
    assert project_status([], ("db", "kong")) == models.REMOVED


def test_observed_status_keeps_init_failed_without_containers():
    assert observed_status(models.INIT_FAILED, [], ()) == models.INIT_FAILED
    assert observed_status(models.ACTIVE_HEALTHY, [], ()) == models.REMOVED
    assert observed_status(models.INIT_FAILED, [c("db")], ()) == models.ACTIVE_HEALTHY


def test_group_by_project_parses_docker_list_entries():
    raw = [
        {
            "Names": ["/a-db"],
            "State": "running",
            "Status": "Up 3 minutes (healthy)",
            "Labels": {"supamanager.project": "a", "supamanager.service": "db"},
        },
        {
            "Names": ["/a-kong"],
            "State": "running",
            "Status": "Up 2 seconds (health: starting)",
            "Labels": {"supamanager.project": "a", "supamanager.service": "kong"},
        },
        {
            "Names": ["/b-db"],
            "State": "exited",
            "Status": "Exited (0) 1 minute ago",
            "Labels": {"supamanager.project": "b", "supamanager.service": "db"},
        },
        {"Names": ["/other"], "State": "running", "Status": "Up", "Labels": {}},
    ]
    grouped = group_by_project(raw)
    assert sorted(grouped) == ["a", "b"]
    assert grouped["a"] == [c("db", ref="a"), c("kong", health="starting", ref="a")]
    assert grouped["b"] == [c("db", state="exited", health=None, ref="b")]
    assert project_status(grouped["a"]) == models.COMING_UP
    assert project_status(grouped["b"]) == models.INACTIVE


def test_service_health_objects():
    containers = [c("db"), c("supavisor", health="starting"), c("auth", state="exited", health=None)]
    assert service_health("db", containers) == {"name": "db", "healthy": True, "status": "ACTIVE_HEALTHY"}
    assert service_health("pooler", containers)["status"] == "COMING_UP"
    auth = service_health("auth", containers)
    assert (auth["healthy"], auth["status"]) == (False, "UNHEALTHY")
    assert "exited" in auth["error"]
    assert service_health("rest", containers)["error"] == "no rest container"


# -- validation -------------------------------------------------------------------------------------
def test_mint_ref_is_twenty_lowercase_letters():
    refs = {models.mint_ref() for _ in range(50)}
    assert len(refs) == 50
    assert all(models.is_ref(r) for r in refs)


def test_validate_create_defaults_and_accepts_any_display_name():
    req = parse_body(V1CreateProjectBody, {"name": "{{ lookup('pipe', 'id') }} $(id) `id` \"'"})
    assert req.name.startswith("{{")
    assert (req.organization_slug, req.region, req.db_pass) == (None, None, None)
    req = parse_body(V1CreateProjectBody, {"name": "x", "db_pass": "Secret-pass-123", "region": "eu-1", "plan": "free"})
    assert req.db_pass == "Secret-pass-123"
    assert "Secret" not in repr(req)


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ([], "invalid_body", "JSON object"),
        ("name", "invalid_body", "JSON object"),
        ({}, "missing_field", "'name' is required"),
        ({"name": None}, "missing_field", "'name' is required"),
        ({"name": 5}, "invalid_type", "'name' must be a string, not a number"),
        ({"name": ["a"]}, "invalid_type", "not an array"),
        ({"name": "  "}, "invalid_value", "must not be empty"),
        ({"name": "a" * 300}, "invalid_value", "longer than"),
        ({"name": "a\nb"}, "invalid_value", "control or bidirectional"),
        ({"name": "invoice\u202egnp.exe"}, "invalid_value", "control or bidirectional"),
        # $ would match before a trailing newline: the whole value must match.
        ({"name": "a", "organization_slug": "default\n"}, "invalid_value", "organization_slug"),
        ({"name": "a", "region": "local\n"}, "invalid_value", "region"),
        ({"name": "a", "db_pass": "Long-enough-pass-1\n"}, "invalid_value", "db_pass"),
        ({"name": "a", "region": True}, "invalid_type", "'region' must be a string, not a boolean"),
        ({"name": "a", "organization_slug": "Bad Slug"}, "invalid_value", "organization_slug"),
        ({"name": "a", "db_pass": "short"}, "invalid_value", "db_pass"),
        ({"name": "a", "db_pass": "with space in it"}, "invalid_value", "db_pass"),
        ({"name": "a", "bogus": 1}, "unknown_field", "bogus"),
    ],
)
def test_validate_create_rejects_bad_bodies(body, code, needle):
    with pytest.raises(InvalidRequest) as err:
        parse_body(V1CreateProjectBody, body)
    assert err.value.code == code
    assert needle in err.value.message
    if isinstance(body, dict) and "db_pass" in body:
        assert body["db_pass"] not in err.value.message


# -- extra vars -------------------------------------------------------------------------------------
def test_extravars_yaml_marks_every_string_unsafe():
    import yaml

    text = extravars_yaml(
        {
            "project_ref": "abc",
            "delete_volumes": True,
            "ports": {"start": 1},
            "p": 'a"b{{ x }}',
            "change": {"site_url": "{{ lookup('pipe', 'id') }}", "list": ["{{ x }}", 2]},
        }
    )
    assert 'project_ref: !unsafe "abc"' in text
    assert "delete_volumes: true" in text

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: ("unsafe", loader.construct_scalar(node)))
    data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    assert data == {
        "project_ref": ("unsafe", "abc"),
        "delete_volumes": True,
        "ports": {"start": 1},
        "p": ("unsafe", 'a"b{{ x }}'),
        # strings inside maps and lists too (the auth settings' change is a map)
        "change": {"site_url": ("unsafe", "{{ lookup('pipe', 'id') }}"), "list": [("unsafe", "{{ x }}"), 2]},
    }
    with pytest.raises(ValueError, match="invalid extra var name"):
        extravars_yaml({"bad name": 1})


# -- settings ---------------------------------------------------------------------------------------
def test_settings_defaults():
    s = load_settings(environ={})
    assert (s.host, s.port, s.poll_interval, s.max_jobs) == ("127.0.0.1", 8085, 15.0, 4)
    # By default the collection is the checkout this package sits in: its playbooks and ansible.cfg.
    assert s.collection_dir == REPO
    assert (s.playbooks_dir / "create.yml").is_file()
    assert s.ansible_config == REPO / "ansible.cfg"


def test_settings_file_then_env_override(tmp_path):
    cfg = tmp_path / "d.toml"
    cfg.write_text('port = 9000\nmax_jobs = 2\nimage_registry = "mirror.example"\n[playbook_vars]\nx = 1\n')
    s = load_settings(cfg, environ={"SUPAMANAGER_PORT": "9100", "SUPAMANAGER_DATA_DIR": str(tmp_path / "d")})
    assert (s.port, s.max_jobs, s.image_registry) == (9100, 2, "mirror.example")
    assert s.data_dir == tmp_path / "d"
    assert s.playbook_vars == {"x": 1}
    s = load_settings(environ={"SUPAMANAGER_CONFIG": str(cfg)})
    assert s.port == 9000


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"SUPAMANAGER_PORT": "http"}, "port"),
        ({"SUPAMANAGER_PORT": "70000"}, "port"),
        ({"SUPAMANAGER_MAX_JOBS": "0"}, "max_jobs"),
        ({"SUPAMANAGER_POLL_INTERVAL": "-1"}, "poll_interval"),
        ({"SUPAMANAGER_SQL_STATEMENT_TIMEOUT": "0"}, "sql_statement_timeout"),
        ({"SUPAMANAGER_SQL_MAX_RESULT_BYTES": "0"}, "sql_max_result_bytes"),
        ({"SUPAMANAGER_BACKUP_SCHEDULE_FOR": "4:00"}, "backup_schedule_for"),
        ({"SUPAMANAGER_BACKUP_SCHEDULE_FOR": "04:00:00 "}, "backup_schedule_for"),
        ({"SUPAMANAGER_BACKUP_INTERVAL": "86400"}, "SUPAMANAGER_BACKUP_SCHEDULE_FOR"),
    ],
)
def test_settings_reject_bad_values(environ, needle):
    with pytest.raises(SettingsError, match=needle):
        load_settings(environ=environ)


def test_settings_reject_unknown_keys_in_file(tmp_path):
    cfg = tmp_path / "d.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(cfg, environ={})


def test_generated_token_is_0600_reused_and_not_logged(tmp_path, caplog):
    s = Settings(data_dir=tmp_path / "data")
    token = ensure_api_token(s)
    assert re.fullmatch(r"sbp_[a-f0-9]{40}", token)  # the form the official CLI insists on
    assert stat.S_IMODE(s.token_file.stat().st_mode) == 0o600
    assert ensure_api_token(s) == token
    assert str(s.token_file) in caplog.text
    assert token not in caplog.text
    given = "given-0123456789abcdefghijklmnopqrstuvwxyz"
    assert ensure_api_token(Settings(data_dir=tmp_path / "data", api_token=given)) == given


# -- a hang-up cannot split recording an operation from queuing it ------------------------------------
async def test_an_operation_recorded_is_queued_even_when_the_request_is_cancelled_meanwhile():
    import asyncio
    import types

    from supamanager_daemon import keys
    from supamanager_daemon.api.projects import record

    queued = []
    written = asyncio.Event()
    release = asyncio.Event()

    async def write():
        written.set()
        await release.wait()  # the store's commit, still under way when the client hangs up
        return {"ref": "p"}, {"id": "op"}

    request = types.SimpleNamespace(app={keys.JOBS: types.SimpleNamespace(enqueue=queued.append)})
    handler = asyncio.create_task(record(request, write))
    await written.wait()
    handler.cancel()  # what aiohttp does to a handler whose client went away
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await handler
    for _ in range(10):
        await asyncio.sleep(0)
    assert queued == [{"id": "op"}]


def test_the_instance_sizes_are_the_documents_and_the_roles():
    """One vocabulary: the official document's desired_instance_size enum, the daemon's shape, and the
    role's table of limits (roles/project/defaults/main.yml) name the same sizes."""
    import json

    import yaml
    from official_check import DOCUMENT
    from supamanager_daemon.shapes.billing import COMPUTE_VARIANTS, INSTANCE_SIZES

    document = json.loads(DOCUMENT.read_text())
    body = document["components"]["schemas"]["V1CreateProjectBody"]["properties"]["desired_instance_size"]
    assert tuple(body["enum"]) == INSTANCE_SIZES
    addon = document["components"]["schemas"]["ApplyProjectAddonBody"]["properties"]["addon_variant"]["oneOf"][0]
    assert set(addon["enum"]) == set(COMPUTE_VARIANTS)
    defaults = yaml.safe_load((REPO / "roles" / "project" / "defaults" / "main.yml").read_text())
    assert tuple(defaults["supabase_instance_sizes"]) == INSTANCE_SIZES
    with pytest.raises(InvalidRequest):
        parse_body(V1CreateProjectBody, {"name": "x", "desired_instance_size": "huge"})
