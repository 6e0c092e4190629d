"""`supamanager profile`: the official CLI's profile file, with project_host and pooler_host, given
or read from an edge's settings. The official CLI 2.117.0 reads such a profile in test_clients.py
(its profile there carries pooler_host); the edge's settings come from roles/edge
(tests/integration/edge/)."""

from __future__ import annotations

import json

import pytest
from supamanager_daemon import cli

URL = "https://api.example.com"


def profile(capsys, *args: str) -> dict[str, str]:
    assert cli.main(["--url", URL, "profile", *args]) == 0
    out = capsys.readouterr().out
    return {key: json.loads(value) for key, value in (line.split(": ", 1) for line in out.splitlines())}


@pytest.mark.parametrize(
    "host, domain",
    [
        ("pooler.example.com", "example.com"),
        ("a.b.pooler.example.co.uk", "example.co.uk"),  # a two-label public suffix
        ("x.y.ck", "x.y.ck"),  # *.ck: every y.ck is a public suffix
        ("a.www.ck", "www.ck"),  # !www.ck: an exception to it
        ("pooler.edge.test", "edge.test"),  # not in the list: the default rule (the last label)
        ("co.uk", None),  # itself a public suffix
    ],
)
def test_the_registrable_domain_follows_the_public_suffix_list(host, domain):
    assert cli.registrable_domain(host) == domain


def test_without_the_list_the_default_rule_applies(tmp_path):
    assert cli.registrable_domain("pooler.example.co.uk", str(tmp_path / "none.dat")) == "co.uk"


def test_private_domains_of_the_list_are_not_public_suffixes(tmp_path):
    psl = tmp_path / "psl.dat"
    psl.write_text("// ICANN\ncom\n// ===BEGIN PRIVATE DOMAINS===\nexample.com\n")
    assert cli.registrable_domain("pooler.example.com", str(psl)) == "example.com"


def test_the_profile_carries_the_given_hosts(capsys, monkeypatch):
    monkeypatch.delenv("SUPAMANAGER_PUBLIC_HOST", raising=False)
    monkeypatch.delenv("SUPAMANAGER_POOLER_HOST", raising=False)
    assert profile(capsys) == {
        "name": "supamanager",
        "api_url": URL,
        "dashboard_url": URL,
        "project_host": "localhost",
    }
    given = profile(capsys, "--project-host", "example.com", "--pooler-host", "pooler.example.com")
    assert (given["project_host"], given["pooler_host"]) == ("example.com", "example.com")
    monkeypatch.setenv("SUPAMANAGER_POOLER_HOST", "db.example.org")
    assert profile(capsys)["pooler_host"] == "example.org"


def test_the_profile_reads_the_hosts_from_the_edge(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SUPAMANAGER_PUBLIC_HOST", "ignored.example")
    (tmp_path / "settings.json").write_text(
        json.dumps({"base_domain": "supa.example.com", "pooler": {"host": "pooler.supa.example.com"}})
    )
    read = profile(capsys, "--edge-root", str(tmp_path))
    assert (read["project_host"], read["pooler_host"]) == ("supa.example.com", "example.com")
    # A flag still wins over the edge's settings.
    assert profile(capsys, "--edge-root", str(tmp_path), "--project-host", "other.example")["project_host"] == (
        "other.example"
    )
    (tmp_path / "settings.json").write_text(json.dumps({"base_domain": "supa.example.com", "pooler": {}}))
    assert "pooler_host" not in profile(capsys, "--edge-root", str(tmp_path))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pooler-host", "pooler example.com"], "--pooler-host must be a host name"),
        (["--pooler-host", "co.uk"], "--pooler-host must be a host name below a public suffix"),
        (["--edge-root", "/nonexistent/edge"], "--edge-root: cannot read /nonexistent/edge/settings.json"),
    ],
)
def test_bad_hosts_are_refused_and_print_nothing(capsys, args, message):
    assert cli.main(["--url", URL, "profile", *args]) == cli.EXIT_USAGE
    out = capsys.readouterr()
    assert out.out == "" and message in out.err


def test_an_edge_settings_file_that_is_not_an_object_is_refused(capsys, tmp_path):
    (tmp_path / "settings.json").write_text("[]")
    assert cli.main(["--url", URL, "profile", "--edge-root", str(tmp_path)]) == cli.EXIT_USAGE
    assert "is not the edge's settings" in capsys.readouterr().err
