"""Custom hostnames through the API on the fake playbooks (conftest.py): ownership through an
address record or a TXT record, asked of a real dnsmasq on loopback (settings.dns_resolver), and
one name for one project only.

The whole flow on a real project behind the real edge (certificate, URLs, containers) is
tests/integration/edge/test_edge_project.py; the document's shapes, test_conformance.py."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import AUTH, wait_operation
from supamanager_daemon import keys
from supamanager_daemon.app import create_app
from supamanager_daemon.domains import dns, hostnames

HOST_ADDRESS = "198.51.100.7"


async def edge_client(aiohttp_client, settings, server, base_domain="edge.test"):
    app = create_app(
        dataclasses.replace(
            settings,
            playbook_vars={"supamanager_edge_base_domain": base_domain},
            edge_addresses=f"{HOST_ADDRESS},2001:db8::7",
            dns_resolver=server,
        )
    )
    client = await aiohttp_client(app)
    await client.app[keys.POLLER].stop()
    return client


async def new_project(client, name="domains"):
    body = {"name": name, "organization_slug": "default", "db_pass": "password123", "region": "local"}
    resp = await client.post("/v1/projects", json=body, headers=AUTH)
    project = await resp.json()
    await wait_operation(client, resp.headers["X-Operation-Id"])
    return f"/v1/projects/{project['ref']}/custom-hostname"


async def answer(client, method, url, status, **kwargs):
    resp = await client.request(method, url, headers=AUTH, **kwargs)
    body = await resp.json() if resp.content_type == "application/json" else None
    assert resp.status == status, (method, url, resp.status, body)
    return body


# Refused with 400 and nothing recorded (test_conformance.py calls them on its project).
BAD_NAMES = [
    "not a hostname",
    "localhost",  # one label
    "under_score.example.com",
    "x.edge.test",  # under the host's own base domain
    "edge.test",
    "a" * 63 + "." + ".".join(["b" * 63] * 3),  # 255 characters
    "-dash.example.com",
]


async def test_ownership_by_address_or_txt_record_one_project_per_name_and_activate(aiohttp_client, settings, dnsmasq):
    server = dnsmasq.serve({"elsewhere.example.test": "203.0.113.9"})
    client = await edge_client(aiohttp_client, settings, server)
    base, other = await new_project(client, "one"), await new_project(client, "two")

    made = await answer(client, "POST", f"{base}/initialize", 201, json={"custom_hostname": "Elsewhere.Example.test"})
    assert made["custom_hostname"] == "elsewhere.example.test"
    await answer(client, "POST", f"{other}/initialize", 409, json={"custom_hostname": "elsewhere.example.test"})
    record = made["data"]["result"]["ownership_verification"]
    assert (record["type"], record["name"]) == ("txt", "_supamanager-challenge.elsewhere.example.test")
    failed = await answer(client, "POST", f"{base}/reverify", 201)
    assert failed["status"] == "2_initiated" and failed["data"]["success"] is False
    assert "resolves to 203.0.113.9, not to this host" in failed["data"]["result"]["verification_errors"][0]
    await answer(client, "POST", f"{base}/activate", 400)

    # The owner publishes the token: the same resolver now holds the TXT record.
    dnsmasq.serve({"elsewhere.example.test": "203.0.113.9"}, txt={record["name"]: record["value"]})
    ok = await answer(client, "POST", f"{base}/reverify", 201)
    assert (ok["status"], ok["data"]["success"]) == ("3_challenge_verified", True)
    assert "verification_errors" not in ok["data"]["result"]

    # Not activated, delete only forgets the name (no operation), and it is free for another project.
    resp = await client.delete(base, headers=AUTH)
    assert resp.status == 200 and "X-Operation-Id" not in resp.headers
    assert (await answer(client, "GET", base, 200))["status"] == "1_not_started"

    # An address record (AAAA) to this host, then activate: the hostname playbook gets the name.
    dnsmasq.serve({"v6.example.test": "2001:db8::7"})
    await answer(client, "POST", f"{other}/initialize", 201, json={"custom_hostname": "v6.example.test"})
    assert (await answer(client, "POST", f"{other}/reverify", 201))["status"] == "3_challenge_verified"
    resp = await client.post(f"{other}/activate", headers=AUTH)
    assert resp.status == 201
    await answer(client, "DELETE", other, 409)  # a second change while the first runs
    op = await wait_operation(client, resp.headers["X-Operation-Id"])
    assert (op["kind"], op["state"], op["params"]) == ("custom_hostname", "succeeded", {"hostname": "v6.example.test"})
    error = await answer(client, "POST", f"{other}/initialize", 400, json={"custom_hostname": "w.example.test"})
    assert "delete it first" in error["message"]


def test_the_dns_client_reads_what_a_server_answers_and_refuses_what_is_not_its_answer():
    # A response to query 0x1234 for a.test, TXT, with one answer (a pointer to the question's name).
    question = b"\x01a\x04test\x00" + b"\x00\x10\x00\x01"
    txt = b"\x05hello\x06 world"
    answer_rr = b"\xc0\x0c" + b"\x00\x10\x00\x01" + b"\x00\x00\x00\x3c" + len(txt).to_bytes(2, "big") + txt
    header = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    assert dns.parse_answer(header + question + answer_rr, 0x1234, dns.TXT) == ["hello world"]
    assert dns.parse_answer(header + question + answer_rr, 0x1234, dns.A) == []
    with pytest.raises(dns.DnsError, match="another query"):
        dns.parse_answer(header + question + answer_rr, 0x9999, dns.TXT)
    nxdomain = b"\x12\x34\x81\x83" + header[4:]
    assert dns.parse_answer(nxdomain + question, 0x1234, dns.TXT) == []
    with pytest.raises(dns.DnsError, match="short"):
        dns.parse_answer(b"\x12", 0x1234, dns.A)
    with pytest.raises(dns.DnsError, match="did not answer"):
        dns.query(("127.0.0.1", 9), "a.test", dns.A, timeout=0.2)


def test_the_host_resolver_is_the_first_ipv4_nameserver(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nnameserver ::1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n")
    assert dns.default_server(conf) == ("10.0.0.2", 53)
    conf.write_text("search example\n")
    with pytest.raises(dns.DnsError, match="set dns_resolver"):
        dns.default_server(conf)
    assert dns.parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert hostnames.challenge_name("a.example") == "_supamanager-challenge.a.example"
