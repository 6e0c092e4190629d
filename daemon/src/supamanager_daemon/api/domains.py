"""Routes of the Domains tag: a project's custom hostname and vanity subdomain (domains/hostnames.py
has the rules).

initialize, reverify and check-availability are answered directly (a record, a DNS lookup);
activate and delete change what runs on the host, so they are operations (kind `custom_hostname`,
playbooks/hostname.yml). A vanity subdomain is a custom hostname under the edge's own base domain:
the same record, the same operation.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiohttp import web

from .. import keys, models
from ..domains import hostnames
from ..errors import Conflict, InvalidState
from ..projects.files import project_info
from ..shapes.domains import (
    ActivateVanitySubdomainResponse,
    SubdomainAvailabilityResponse,
    UpdateCustomHostnameBody,
    UpdateCustomHostnameResponse,
    VanitySubdomainBody,
    VanitySubdomainConfigResponse,
)
from ..store.errors import OperationInProgress
from .projects import OPERATION_HEADER, accepted, load_project, path_ref, record
from .routing import Api, Reply

api = Api("Domains", "A project's custom hostname and vanity subdomain on the host's edge.")

_RUNNING = frozenset({models.ACTIVE_HEALTHY, models.ACTIVE_UNHEALTHY})


async def _served(request: web.Request, ref: str) -> str:
    """The custom hostname the project's files say it runs with ('' for none): what the last
    hostname.yml run switched to, observed rather than assumed."""
    info = await asyncio.to_thread(project_info, request.app[keys.SETTINGS], ref)
    return str(info.get("custom_hostname") or "")


def _answer(request: web.Request, ref: str, record_: dict[str, Any] | None, served: str) -> dict[str, Any]:
    settings = request.app[keys.SETTINGS]
    hostname = record_["hostname"] if record_ else served
    if not hostname:
        status = hostnames.NOT_STARTED
    elif served == hostname:
        status = hostnames.RECONFIGURED
    else:
        status = record_["status"]
    errors = record_["errors"] if record_ else []
    verified = status in (hostnames.VERIFIED, hostnames.RECONFIGURED)
    result = {
        "id": ref,
        "hostname": hostname,
        "ssl": {
            "status": "active" if served == hostname and hostname else "pending_validation",
            "validation_records": [],
        },
        "ownership_verification": {
            "type": "txt",
            "name": hostnames.challenge_name(hostname) if hostname else "",
            "value": record_["token"] if record_ else "",
        },
        "custom_origin_server": f"{ref}.{settings.edge_base_domain}" if settings.edge_base_domain else "",
        "status": "active" if verified else "pending",
    }
    if errors:
        result["verification_errors"] = errors
    return {
        "status": status,
        "custom_hostname": hostname,
        "data": {"success": not errors, "errors": [], "messages": [], "result": result},
    }


@api.get(
    "/v1/projects/{ref}/custom-hostname",
    "v1-get-hostname-config",
    "Get the project's custom hostname",
    description="`5_services_reconfigured` once the project's URLs are the name's (read from its files).",
    response=UpdateCustomHostnameResponse,
    errors=(404,),
)
async def get_hostname(request: web.Request) -> dict[str, Any]:
    ref = path_ref(request)
    found = await request.app[keys.STORE].get_custom_hostname(ref)
    return _answer(request, ref, found, await _served(request, ref))


@api.post(
    "/v1/projects/{ref}/custom-hostname/initialize",
    "v1-update-hostname-config",
    "Start giving the project a custom hostname",
    description="Records the name (`2_initiated`) and the TXT record that proves its ownership; nothing runs yet."
    " The name must be a DNS name outside the host's own base domain.",
    status=201,
    body=UpdateCustomHostnameBody,
    response=UpdateCustomHostnameResponse,
    errors=(400, 404, 409),
)
async def initialize(request: web.Request, body: UpdateCustomHostnameBody) -> dict[str, Any]:
    ref = path_ref(request)
    hostname = hostnames.check_hostname(request.app[keys.SETTINGS], body.custom_hostname)
    await load_project(request)
    served = await _served(request, ref)
    if served and served != hostname:
        raise InvalidState(f"project {ref} already runs with custom hostname {served}: delete it first")
    token = secrets.token_hex(16)
    found = await request.app[keys.STORE].put_custom_hostname(ref, hostname, token, hostnames.INITIATED)
    return _answer(request, ref, found, served)


async def _record(request: web.Request, ref: str) -> dict[str, Any]:
    found = await request.app[keys.STORE].get_custom_hostname(ref)
    if found is None:
        raise InvalidState(f"project {ref} has no custom hostname: initialize one first", code="no_custom_hostname")
    return found


@api.post(
    "/v1/projects/{ref}/custom-hostname/reverify",
    "v1-verify-dns-config",
    "Check the custom hostname's DNS",
    description="`3_challenge_verified` once the name resolves to this host (settings.edge_addresses) or its TXT"
    " record holds the token; else the reasons, in `data.result.verification_errors`.",
    status=201,
    response=UpdateCustomHostnameResponse,
    errors=(400, 404, 409),
)
async def reverify(request: web.Request) -> dict[str, Any]:
    ref = path_ref(request)
    found = await _record(request, ref)
    errors = await hostnames.verify(request.app[keys.SETTINGS], found["hostname"], found["token"])
    status = hostnames.INITIATED if errors else hostnames.VERIFIED
    found = await request.app[keys.STORE].put_custom_hostname(ref, found["hostname"], found["token"], status, errors)
    return _answer(request, ref, found, await _served(request, ref))


def _choose_custom_hostname(project: dict[str, Any]) -> str:
    if project["status"] not in _RUNNING:
        raise InvalidState(
            f"project {project['ref']} is {project['status']}: it must be running", code="project_not_running"
        )
    return "custom_hostname"


@api.post(
    "/v1/projects/{ref}/custom-hostname/activate",
    "v1-activate-custom-hostname",
    "Switch the project to its custom hostname",
    description="An operation (kind `custom_hostname`): the edge routes the name and obtains its certificate, then"
    " the project's URLs become `https://<name>` (only the services that hold them are recreated). Needs"
    " `3_challenge_verified`. Answers at once; `5_services_reconfigured` when it is done.",
    status=201,
    response=UpdateCustomHostnameResponse,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def activate(request: web.Request) -> Reply:
    ref = path_ref(request)
    found = await _record(request, ref)
    if found["status"] != hostnames.VERIFIED:
        raise InvalidState(
            f"the ownership of {found['hostname']} is not verified yet: reverify first", code="hostname_not_verified"
        )
    store = request.app[keys.STORE]
    _, op = await record(
        request, lambda: store.start_operation(ref, _choose_custom_hostname, {"hostname": found["hostname"]})
    )
    return accepted(_answer(request, ref, found, await _served(request, ref)), op)


@api.delete(
    "/v1/projects/{ref}/custom-hostname",
    "v1-Delete hostname config",
    "Remove the project's custom hostname",
    description="Forgets the name; when the project runs with it, an operation (kind `custom_hostname`) removes"
    " its route and certificate and puts the URLs back to `https://<ref>.<base domain>` (its id in"
    " `X-Operation-Id`).",
    errors=(404, 409),
)
async def delete_hostname(request: web.Request) -> Reply | None:
    ref = path_ref(request)
    await request.app[keys.STORE].get_custom_hostname(ref)  # ProjectNotFound
    return await _remove(request, ref, bool(await _served(request, ref)))


async def _remove(request: web.Request, ref: str, served: bool) -> Reply | None:
    """Forget the project's record; when its URLs use the name (served), an operation puts them back."""
    store = request.app[keys.STORE]
    if served:
        _, op = await record(request, lambda: store.start_operation(ref, _choose_custom_hostname, {"hostname": ""}))
        await store.delete_custom_hostname(ref)
        return Reply(None, {"X-Operation-Id": op["id"]})
    running = [op for op in await store.active_operations() if op["ref"] == ref]
    if running:  # e.g. an activate that has not switched the URLs yet
        raise OperationInProgress(ref, running[0]["id"], running[0]["kind"])
    await store.delete_custom_hostname(ref)
    return None


# -- vanity subdomains ---------------------------------------------------------------------------
@api.get(
    "/v1/projects/{ref}/vanity-subdomain",
    "v1-get-vanity-subdomain-config",
    "Get the project's vanity subdomain",
    description="`active` with `custom_domain` `<subdomain>.<base domain>` once the project's URLs are the"
    " subdomain's, `custom-domain-used` when they are a custom hostname's (read from its files).",
    response=VanitySubdomainConfigResponse,
    errors=(404,),
)
async def get_vanity_subdomain(request: web.Request) -> dict[str, Any]:
    project = await load_project(request)
    served = await _served(request, project["ref"])
    if not served:
        return {"status": "not-used"}
    used = "active" if hostnames.is_vanity(request.app[keys.SETTINGS], served) else "custom-domain-used"
    return {"status": used, "custom_domain": served}


async def _available(request: web.Request, ref: str, hostname: str) -> bool:
    """Whether the project may take this name: not the host's own, not another project's own name
    (`<ref>.<base domain>`) or its custom hostname or vanity subdomain."""
    store = request.app[keys.STORE]
    if hostname in hostnames.reserved_hostnames(request.app[keys.SETTINGS]):
        return False
    label = hostname.partition(".")[0]
    if models.is_ref(label) and await store.get_project(label) is not None:
        return False
    return await store.hostname_owner(hostname) in (None, ref)


@api.post(
    "/v1/projects/{ref}/vanity-subdomain/check-availability",
    "v1-check-vanity-subdomain-availability",
    "Check whether a vanity subdomain is available",
    description="`available` false when the name `<subdomain>.<base domain>` is the host's own, another"
    " project's own name or another project's subdomain. The subdomain must be one DNS label.",
    status=201,
    body=VanitySubdomainBody,
    response=SubdomainAvailabilityResponse,
    errors=(400, 404),
)
async def check_vanity_subdomain(request: web.Request, body: VanitySubdomainBody) -> dict[str, Any]:
    hostname = hostnames.vanity_hostname(request.app[keys.SETTINGS], body.vanity_subdomain)
    project = await load_project(request)
    return {"available": await _available(request, project["ref"], hostname)}


@api.post(
    "/v1/projects/{ref}/vanity-subdomain/activate",
    "v1-activate-vanity-subdomain-config",
    "Give the project a vanity subdomain",
    description="An operation (kind `custom_hostname`, as a custom hostname's activate): the edge routes"
    " `<subdomain>.<base domain>` and obtains its certificate, then the project's URLs become"
    " `https://<subdomain>.<base domain>` (only the services that hold them are recreated). No DNS check: the"
    " base domain is the host's. 409 when the name is not available or the project uses a custom hostname.",
    status=201,
    body=VanitySubdomainBody,
    response=ActivateVanitySubdomainResponse,
    errors=(400, 404, 409),
    headers=OPERATION_HEADER,
)
async def activate_vanity_subdomain(request: web.Request, body: VanitySubdomainBody) -> Reply:
    settings = request.app[keys.SETTINGS]
    hostname = hostnames.vanity_hostname(settings, body.vanity_subdomain)
    ref = (await load_project(request))["ref"]
    if not await _available(request, ref, hostname):
        raise Conflict(f"vanity subdomain {hostname} is not available", code="subdomain_taken")
    served = await _served(request, ref)
    if served and not hostnames.is_vanity(settings, served):
        raise Conflict(f"project {ref} runs with custom hostname {served}: delete it first", code="custom_domain_used")
    store = request.app[keys.STORE]
    # The host owns its base domain: the name is verified as it is recorded.
    await store.put_custom_hostname(ref, hostname, "", hostnames.VERIFIED)
    _, op = await record(request, lambda: store.start_operation(ref, _choose_custom_hostname, {"hostname": hostname}))
    return accepted({"custom_domain": hostname}, op)


@api.delete(
    "/v1/projects/{ref}/vanity-subdomain",
    "v1-deactivate-vanity-subdomain-config",
    "Remove the project's vanity subdomain",
    description="When the project runs with its vanity subdomain, an operation (kind `custom_hostname`) removes"
    " its route and certificate and puts the URLs back to `https://<ref>.<base domain>` (its id in"
    " `X-Operation-Id`). A custom hostname is left as it is.",
    errors=(404, 409),
)
async def delete_vanity_subdomain(request: web.Request) -> Reply | None:
    settings = request.app[keys.SETTINGS]
    ref = (await load_project(request))["ref"]
    found = await request.app[keys.STORE].get_custom_hostname(ref)
    served = await _served(request, ref)
    if served and hostnames.is_vanity(settings, served):
        return await _remove(request, ref, True)
    if found and hostnames.is_vanity(settings, found["hostname"]):
        return await _remove(request, ref, False)
    return None
