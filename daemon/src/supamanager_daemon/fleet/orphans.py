"""Orphans: containers, networks and volumes labelled `supamanager.project=<ref>` for a ref the
daemon does not know (left by a crash, a manual `docker run`, an interrupted test).

A ref whose project directory exists under the projects root (`<root>/projects/<ref>/`, e.g. a
project made with ansible-playbook on this host) is a project, not an orphan, even if the daemon
never created it.

Listed on request (GET /v1/orphans: three Docker calls, never part of the poll, which stays one
call per cycle; the poll notices orphaned containers from its own view), removed on request only:
containers and networks; volumes only when asked explicitly, since they may hold a database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pathlib
from typing import Any

from .docker import PROJECT_LABEL, SERVICE_LABEL, DockerClient, DockerError, NotFoundError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Orphans:
    containers: list[dict[str, Any]]
    networks: list[dict[str, Any]]
    volumes: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def refs(self) -> list[str]:
        return sorted({o["ref"] for o in (*self.containers, *self.networks, *self.volumes)})


def _ref(labels: dict[str, str] | None) -> str | None:
    return (labels or {}).get(PROJECT_LABEL) or None


def find(
    containers: list[dict[str, Any]],
    networks: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    known: set[str],
    only: str | None = None,
) -> Orphans:
    """The labelled objects whose ref is not known (and is `only`, when given), from Docker's lists."""

    def orphaned(labels) -> str | None:
        ref = _ref(labels)
        if ref is None or ref in known or (only is not None and ref != only):
            return None
        return ref

    found_containers = []
    for c in containers:
        ref = orphaned(c.get("Labels"))
        if ref is not None:
            found_containers.append(
                {
                    "id": c["Id"],
                    "name": (c.get("Names") or ["?"])[0].lstrip("/"),
                    "ref": ref,
                    "service": (c.get("Labels") or {}).get(SERVICE_LABEL),
                    "state": c.get("State"),
                }
            )
    found_networks = [
        {"id": n["Id"], "name": n.get("Name"), "ref": ref}
        for n in networks
        if (ref := orphaned(n.get("Labels"))) is not None
    ]
    found_volumes = [{"name": v["Name"], "ref": ref} for v in volumes if (ref := orphaned(v.get("Labels"))) is not None]
    key = lambda o: (o["ref"], o["name"])  # noqa: E731
    return Orphans(sorted(found_containers, key=key), sorted(found_networks, key=key), sorted(found_volumes, key=key))


def project_dirs(root: pathlib.Path) -> set[str]:
    """Refs with a project directory on this host (the role's <root>/projects/<ref>/)."""
    try:
        return {d.name for d in (root / "projects").iterdir() if d.is_dir()}
    except OSError:
        return set()


async def list_orphans(docker: DockerClient, store: Any, root: pathlib.Path, only: str | None = None) -> Orphans:
    containers = await docker.project_containers()
    networks = await docker.project_networks()
    volumes = await docker.project_volumes()
    # Read the known refs after Docker answered: a project created meanwhile is known by then.
    known = {p["ref"] for p in await store.list_projects()} | await asyncio.to_thread(project_dirs, root)
    return find(containers, networks, volumes, known, only)


async def clean(
    docker: DockerClient, store: Any, root: pathlib.Path, *, volumes: bool, only: str | None = None
) -> dict[str, Any]:
    """Remove orphaned containers, then networks, then (when asked) volumes; report each."""
    found = await list_orphans(docker, store, root, only)
    removed: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}
    errors: list[str] = []

    async def remove(kind: str, name: str, call) -> None:
        try:
            await call
        except NotFoundError:
            pass  # gone meanwhile: what we wanted
        except DockerError as exc:
            errors.append(f"{kind} {name}: {exc}")
            return
        removed[kind].append(name)
        log.warning("removed orphaned %s %s", kind.rstrip("s"), name)

    for c in found.containers:
        await remove("containers", c["name"], docker.remove_container(c["id"]))
    for n in found.networks:
        await remove("networks", n["name"], docker.remove_network(n["id"]))
    if volumes:
        for v in found.volumes:
            await remove("volumes", v["name"], docker.remove_volume(v["name"]))
    kept = [] if volumes else [v["name"] for v in found.volumes]
    return {"removed": removed, "kept_volumes": kept, "errors": errors}
