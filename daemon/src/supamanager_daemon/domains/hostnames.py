"""A project's custom hostname: which names may be one, and whether its owner pointed it here.

The state machine (the Management API's statuses): initialize records the name, 2_initiated, with
a token; reverify looks the name up (dns.py) and records 3_challenge_verified once it resolves to
one of this host's addresses (settings.edge_addresses) or `_supamanager-challenge.<name>` has a TXT
record holding the token; activate runs playbooks/hostname.yml (the edge's certificate first, then
the project's URLs); 5_services_reconfigured is observed, not assumed: the project's project.json
names the hostname once the playbook has switched it.

A vanity subdomain is a custom hostname of one label under the edge's own base domain: its owner is
the host, so it is verified when it is recorded, and the same operation activates and removes it.
"""

from __future__ import annotations

import asyncio
import re

from ..errors import InvalidRequest
from ..settings import Settings
from . import dns

# Lowercase DNS labels, two or more (the role checks the same: roles/project/tasks/validate.yml).
HOSTNAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# One of them: a vanity subdomain is `<label>.<base domain>`.
LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
CHALLENGE_PREFIX = "_supamanager-challenge."

NOT_STARTED = "1_not_started"
INITIATED = "2_initiated"
VERIFIED = "3_challenge_verified"
ORIGIN_READY = "4_origin_setup_completed"
RECONFIGURED = "5_services_reconfigured"


def check_hostname(settings: Settings, value: str) -> str:
    """The name, lowercased, when it may be a custom hostname here; else InvalidRequest."""
    base = _base_domain(settings)
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


def _base_domain(settings: Settings) -> str:
    base = settings.edge_base_domain
    if not base:
        raise InvalidRequest("this host has no edge (supamanager_edge_base_domain): no custom hostname can be served")
    return base


def vanity_hostname(settings: Settings, value: str) -> str:
    """`<label>.<base domain>` for a vanity subdomain, when the label may be one; else InvalidRequest.
    The labels of the host's own names (the pooler host's and the daemon's, under the base domain)
    are not available."""
    base = _base_domain(settings)
    label = value.lower()
    if not LABEL.fullmatch(label):
        raise InvalidRequest(
            "vanity_subdomain must be one DNS label (letters, digits, inner hyphens), at most 63 characters",
            code="invalid_subdomain",
        )
    return f"{label}.{base}"


def reserved_hostnames(settings: Settings) -> frozenset[str]:
    """The names under the base domain that are the host's own, never a project's."""
    names = {settings.pooler_host, str(settings.playbook_vars.get("supamanager_edge_api_host", "") or "")}
    return frozenset(n for n in names if n)


def is_vanity(settings: Settings, hostname: str) -> bool:
    """Whether a custom hostname is a vanity subdomain: one label under the edge's base domain."""
    base = settings.edge_base_domain
    label, _, rest = hostname.partition(".")
    return bool(base) and rest == base and bool(LABEL.fullmatch(label))


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
