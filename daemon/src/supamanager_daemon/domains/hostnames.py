"""A project's custom hostname: which names may be one, and whether its owner pointed it here.

The state machine (the Management API's statuses): initialize records the name, 2_initiated, with
a token; reverify looks the name up (dns.py) and records 3_challenge_verified once it resolves to
one of this host's addresses (settings.edge_addresses) or `_supamanager-challenge.<name>` has a TXT
record holding the token; activate runs playbooks/hostname.yml (the edge's certificate first, then
the project's URLs); 5_services_reconfigured is observed, not assumed: the project's project.json
names the hostname once the playbook has switched it.
"""

from __future__ import annotations

import asyncio
import re

from ..errors import InvalidRequest
from ..settings import Settings
from . import dns

# Lowercase DNS labels, two or more (the role checks the same: roles/project/tasks/validate.yml).
HOSTNAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
CHALLENGE_PREFIX = "_supamanager-challenge."

NOT_STARTED = "1_not_started"
INITIATED = "2_initiated"
VERIFIED = "3_challenge_verified"
ORIGIN_READY = "4_origin_setup_completed"
RECONFIGURED = "5_services_reconfigured"


def check_hostname(settings: Settings, value: str) -> str:
    """The name, lowercased, when it may be a custom hostname here; else InvalidRequest."""
    base = settings.edge_base_domain
    if not base:
        raise InvalidRequest("this host has no edge (supamanager_edge_base_domain): no custom hostname can be served")
    name = value.lower()
    if not HOSTNAME.fullmatch(name):
        raise InvalidRequest(
            "custom_hostname must be a DNS name of two or more labels (letters, digits, hyphens),"
            " at most 253 characters",
            code="invalid_hostname",
        )
    if name == base or name.endswith("." + base):
        raise InvalidRequest(f"custom_hostname must be outside this host's own domain {base}", code="invalid_hostname")
    return name


def challenge_name(hostname: str) -> str:
    return CHALLENGE_PREFIX + hostname


def _verify(settings: Settings, hostname: str, token: str) -> list[str]:
    server = dns.parse_server(settings.dns_resolver)
    failures: list[str] = []

    def lookup(name: str, rtype: int) -> set[str]:
        try:
            return set(dns.query(server, name, rtype))
        except dns.DnsError as exc:
            failures.append(f"{name}: {exc}")
            return set()

    addresses = lookup(hostname, dns.A)
    if not addresses & settings.edge_address_set:
        addresses |= lookup(hostname, dns.AAAA)
    if addresses & settings.edge_address_set or token in lookup(challenge_name(hostname), dns.TXT):
        return []
    ours = ", ".join(sorted(settings.edge_address_set)) or "none configured (edge_addresses)"
    seen = ", ".join(sorted(addresses)) or "no address"
    return [
        f"{hostname} resolves to {seen}, not to this host ({ours}),"
        f" and no TXT record {challenge_name(hostname)} holds the verification token",
        *failures,
    ]


async def verify(settings: Settings, hostname: str, token: str) -> list[str]:
    """The reasons the name is not shown to be ours, [] when it is (the DNS lookups run in a thread)."""
    try:
        return await asyncio.to_thread(_verify, settings, hostname, token)
    except dns.DnsError as exc:  # no resolver to ask
        return [str(exc)]
