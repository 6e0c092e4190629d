"""The shipped monitoring (packaging/monitoring/): the alert rules pass `promtool check rules` and
their own `promtool test rules` (series that fire each alert and series that must not), and every
series the rules and the Grafana dashboard name is one the daemon exports at /metrics."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess

import pytest
from supamanager_daemon import models
from supamanager_daemon.metrics import USAGE_FAMILIES, Metrics

MONITORING = pathlib.Path(__file__).resolve().parents[2] / "packaging" / "monitoring"
RULES = MONITORING / "supamanager-rules.yml"
SERIES = re.compile(r"\bsupamanager_[a-z_]+\b")


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: Debian's prometheus package (bindep.txt; scripts/system-packages)"
    return subprocess.run([tool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)


def exported() -> set[str]:
    """Every series name /metrics can show: rendered with a project and a usage point that has every figure."""
    project = {"ref": "abcdefghijklmnopqrst", "status": models.ACTIVE_HEALTHY}
    figures = [field for _name, _kind, field, _help in USAGE_FAMILIES]
    counters = {"rest": 1, "auth": 1, "storage": 1, "realtime": 1, "total": 5}
    point = {project["ref"]: {**dict.fromkeys(figures, 1), "api_request_counters": counters}}
    text = Metrics().render([project], 0, 0, 0, {}, point, (1, 0), {project["ref"]: 1.0})
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "supamanager-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    return exprs


def test_the_rules_pass_promtool_check_and_their_unit_tests():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "supamanager-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_that_fires_it():
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.MULTILINE))
    tests = (MONITORING / "supamanager-rules.test.yml").read_text()
    fired = {m.group(1) for m in re.finditer(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests)}
    quiet = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", tests))
    assert alerts and alerts == fired == quiet, (alerts, fired, quiet)


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_only_exported_series_are_queried(source):
    exprs = re.findall(r"expr: (.+)", RULES.read_text()) if source == "rules" else dashboard_exprs()
    named = {name for expr in exprs for name in SERIES.findall(expr)}
    assert named, "no series named?"
    assert named <= exported(), f"not exported by the daemon: {sorted(named - exported())}"


def test_the_dashboard_imports_as_grafana_json():
    dashboard = json.loads((MONITORING / "supamanager-dashboard.json").read_text())
    assert dashboard["uid"] == "supamanager" and dashboard["title"]
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    # Every per-project panel follows the dashboard's project picker.
    per_project = [t["expr"] for p in dashboard["panels"] for t in p["targets"] if "supamanager_project_" in t["expr"]]
    assert per_project and all('ref=~"$ref"' in expr for expr in per_project)


def test_the_newest_completed_backup_of_each_project_is_exported(tmp_path):
    """supamanager_project_last_backup_timestamp_seconds (SupamanagerBackupLate reads it): the newest
    COMPLETED backup's start per project; a FAILED one, a manifest with an unreadable time and a
    project without backups give none."""
    from supamanager_daemon.metrics import count_backups
    from supamanager_daemon.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", root=tmp_path / "root")
    sick, good, none = "sicksicksicksicksick", "goodgoodgoodgoodgood", "nonenonenonenonenone"
    for ref, backup_id, status, at in [
        (good, 1, "COMPLETED", "2026-12-01T04:00:00Z"),
        (good, 2, "COMPLETED", "2026-12-02T04:00:00.500Z"),
        (good, 3, "FAILED", "2026-12-03T04:00:00Z"),
        (sick, 4, "COMPLETED", "yesterday"),
        (sick, 5, "COMPLETED", None),
    ]:
        archive = settings.root / "backups" / ref / "archive" / str(backup_id)
        archive.mkdir(parents=True)
        (archive / "backup.json").write_text(json.dumps({"id": backup_id, "status": status, "inserted_at": at}))
    counts, newest = count_backups(settings, [good, sick, none])
    assert counts == {"COMPLETED": 4, "FAILED": 1}
    assert newest == {good: 1796184000.5}
    projects = [{"ref": r, "status": models.ACTIVE_HEALTHY} for r in (good, sick)]
    text = Metrics().render(projects, 0, 0, 0, counts, {}, (0, 0), {**newest, none: 1.0})
    assert f'supamanager_project_last_backup_timestamp_seconds{{ref="{good}"}} 1796184000.5' in text
    assert sick not in text.split("supamanager_project_last_backup_timestamp_seconds", 2)[2]
    assert none not in text  # not a known project


def test_each_project_s_gateway_requests_are_a_counter_by_kind_that_sums_to_all():
    ref = "abcdefghijklmnopqrst"
    counters = {"rest": 7, "auth": 4, "storage": 0, "realtime": 1, "total": 15}
    projects = [{"ref": ref, "status": models.ACTIVE_HEALTHY}, {"ref": "b" * 20, "status": models.ACTIVE_HEALTHY}]
    usage = {ref: {"api_request_counters": counters}, "b" * 20: {"api_request_counters": None}}
    text = Metrics().render(projects, 0, 0, 0, {}, usage, (1, 0), {})
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("supamanager_project_api_"))
    expected = {"rest": "7", "auth": "4", "storage": "0", "realtime": "1", "other": "3"}
    name = "supamanager_project_api_requests_total"
    assert samples == {f'{name}{{ref="{ref}",kind="{kind}"}}': n for kind, n in expected.items()}
    assert "# TYPE supamanager_project_api_requests_total counter" in text
