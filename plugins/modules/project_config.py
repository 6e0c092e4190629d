#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: project_config
short_description: Keep a Supabase project's secrets, JWT keys and host ports on its Docker host, in one run
version_added: 0.1.0
description:
  - Everything a project's files are rendered from that must stay the same across runs, read or made in one module
    run, so that a create does not start a process per concern.
  - V(present) reads the kept secrets (C(secrets.json) in O(secrets_dir)) and generates the missing ones (O(generate),
    name and length, letters and digits); mints or reads the JWT secret and the API keys (C(jwt.json), as
    M(supamanager.supabase.jwt_keys) does); allocates or reads the project's host ports in the port registry (as
    M(supamanager.supabase.port_allocation) does, under the same lock). Files holding secrets are written with mode
    C(0600) in a C(0700) directory, atomically.
  - It refuses to invent a new database password when the database volume O(db_volume) exists but C(secrets.json) does
    not, and, with O(existing=true), to act on a project that was never created (no C(docker-compose.yml) in
    O(project_dir) or no kept secrets).
  - It reports whether the project existed before the run (its directories, or Docker objects with the label
    C(supamanager.project=<project>)), and the Docker engine's version.
  - V(absent) removes O(project_dir), releases the ports and, with O(remove_secrets), removes O(secrets_dir).
  - B(Set no_log on the task.) The results hold the secrets; an action plugin marks every result of this module
    C(no_log) anyway.
extends_documentation_fragment:
  - supamanager.supabase._attributes
  - supamanager.supabase._attributes.action
attributes:
  action:
    details:
      - The action plugin marks the result C(no_log).
  check_mode:
    support: full
    details:
      - Nothing is written; generated values in the result are a preview that is not kept.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  project:
    description:
      - The project's ref.
    type: str
    required: true
  state:
    description:
      - V(present) reads or makes the configuration; V(absent) removes the project's directory and ports.
    type: str
    choices: [present, absent]
    default: present
  project_dir:
    description:
      - The project's directory (its rendered files).
    type: path
    required: true
  secrets_dir:
    description:
      - The directory of the kept secrets (C(secrets.json), C(jwt.json)).
    type: path
    required: true
  existing:
    description:
      - The project must exist already (resume, restart); fail unless O(project_dir) has a C(docker-compose.yml) and
        the kept secrets are there.
    type: bool
    default: false
  generate:
    description:
      - Secrets to keep, name -> length. A kept value is returned as it is; a missing one is generated.
    type: dict
    default: {}
  predating:
    description:
      - Values for secrets of O(generate) that came after a project's kept secrets were first written, name -> value
        (the value such a project has run with, upstream's default). Used only when C(secrets.json) exists and lacks
        the name; a new project generates every secret.
    type: dict
    default: {}
  db_volume:
    description:
      - The name of the project's database volume. When it exists and C(secrets.json) does not, the run fails (unless
        O(db_password) is given).
    type: str
  db_password:
    description:
      - The database password the caller chose. It replaces the kept C(POSTGRES_PASSWORD) and is kept in its place;
        for an existing database it is a change, which the caller sets inside the database (the role's
        C(tasks/db_password.yml)). Empty keeps (or, for a new project, generates) the password.
      - The caller validates it. It is not returned (RV(secrets) leaves C(POSTGRES_PASSWORD) out), since the caller
        has it and Ansible would mask the value of a C(no_log) option in every result anyway.
    type: str
    default: ""
  jwt_issuer:
    description:
      - The C(iss) claim of the API keys.
    type: str
    default: supabase
  jwt_expiry_days:
    description:
      - Days until new API keys expire.
    type: int
    default: 1825
  port_registry:
    description:
      - The port registry file (see M(supamanager.supabase.port_allocation)).
    type: path
    required: true
  port_names:
    description:
      - The ports the project holds.
    type: list
    elements: str
    default: [kong_http, kong_https, postgres, pooler_transaction]
  port_range_start:
    description:
      - The first port to hand out.
    type: int
    default: 54320
  port_range_end:
    description:
      - The last port to hand out.
    type: int
    default: 65535
  bind_address:
    description:
      - The address a new port must be free on.
    type: str
    default: 0.0.0.0
  remove_secrets:
    description:
      - With V(absent), also remove O(secrets_dir).
    type: bool
    default: false
  docker_host:
    description:
      - The engine's socket, C(unix:///path). Default C(DOCKER_HOST), else C(unix:///var/run/docker.sock).
    type: str
requirements:
  - PyJWT on the managed host.
seealso:
  - module: supamanager.supabase.jwt_keys
  - module: supamanager.supabase.port_allocation
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Read or make the project's secrets, keys and ports
  supamanager.supabase.project_config:
    project: shop
    project_dir: /var/lib/supamanager/projects/shop
    secrets_dir: /var/lib/supamanager/secrets/shop
    port_registry: /var/lib/supamanager/ports.json
    generate:
      POSTGRES_PASSWORD: 32
    db_volume: supamanager-shop-db-data
  register: config
  no_log: true
"""

RETURN = r"""
existed:
  description:
    - Whether the project had directories or labelled Docker objects before this run (V(present)). Returned with a
      failure too, so that the caller rolls back only a project this run began.
  returned: always
  type: bool
db_existed:
  description:
    - Whether O(db_volume) existed before this run (V(present)). Its roles have the passwords they were given when it
      was made, which the caller sets again from the kept one.
  returned: success
  type: bool
engine_version:
  description: The Docker engine's version (C(docker version)'s server version).
  returned: success
  type: str
  sample: 20.10.24
secrets:
  description:
    - The kept secrets, name -> value (V(present)); without C(POSTGRES_PASSWORD) when O(db_password) is given.
  returned: success
  type: dict
jwt:
  description: C(jwt_secret), C(anon_key), C(service_role_key) (V(present)).
  returned: success
  type: dict
ports:
  description: The project's host ports, name -> port (V(present)).
  returned: success
  type: dict
  sample: {kong_http: 54321, kong_https: 54322, postgres: 54323, pooler_transaction: 54324}
written:
  description: The files this run wrote (or would write in check mode).
  returned: success
  type: list
  elements: str
removed:
  description: What this run removed (V(absent)), the directories and the port allocation as V(ports).
  returned: success
  type: list
  elements: str
"""

import json
import os
import shutil
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.supamanager.supabase.plugins.module_utils import _jwt_keys, _port_registry
from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically
from ansible_collections.supamanager.supabase.plugins.module_utils._docker_api import DockerAPI, DockerError

SECRETS_FILE = "secrets.json"
KEYS_FILE = "jwt.json"
PROJECT_LABEL = "supamanager.project"


class ConfigError(Exception):
    pass


def read_json(path):
    """The JSON object in path, or None when there is no file. The content is secret: never quoted."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        if not os.path.exists(path):
            return None
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON; repair or restore it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object; repair or restore it")
    return data


def plan_secrets(kept, generate, predating=None):
    """Kept values where present and non-empty, for an older kept file the predating value of a name it
    lacks, new ones for the rest; (secrets, names generated)."""
    out, fresh = {}, []
    for name, length in sorted(generate.items()):
        value = (kept or {}).get(name)
        if isinstance(value, str) and value:
            out[name] = value
        elif kept and name in (predating or {}):
            out[name] = str(predating[name])
            fresh.append(name)
        else:
            out[name] = _jwt_keys.generate_secret(int(length))
            fresh.append(name)
    return out, fresh


def ensure_private_dir(path, check_mode):
    """path as a 0700 directory; True when something changed."""
    if os.path.isdir(path):
        if os.stat(path).st_mode & 0o777 == 0o700:
            return False
        if not check_mode:
            os.chmod(path, 0o700)
        return True
    if not check_mode:
        os.makedirs(path, 0o700)
        os.chmod(path, 0o700)
    return True


def labelled_objects(api, project):
    label = f"{PROJECT_LABEL}={project}"
    return bool(api.containers(label)) or bool(api.volumes(label))


def volume_exists(api, name):
    try:
        api.request("GET", f"/volumes/{name}")
    except DockerError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def allocate_ports(p, check_mode):
    names, start, end = p["port_names"], p["port_range_start"], p["port_range_end"]
    _port_registry.validate_names(names)
    _port_registry.validate_range(start, end)
    _port_registry.check_bind_address(p["bind_address"])

    def plan(registry):
        after, allocated = _port_registry.plan_allocation(
            registry, p["project"], names, start, end, lambda port: _port_registry.port_is_free(port, p["bind_address"])
        )
        return after, allocated, _port_registry.with_project(registry, p["project"], after) if allocated else None

    if check_mode:
        after, allocated, new_registry = plan(_port_registry.read_registry(p["port_registry"]))
        return dict((n, after[n]) for n in names), bool(allocated)
    with _port_registry.locked(p["port_registry"]):
        after, allocated, new_registry = plan(_port_registry.read_registry(p["port_registry"]))
        if new_registry is not None:
            _port_registry.write_registry(p["port_registry"], new_registry)
    return dict((n, after[n]) for n in names), bool(allocated)


def existed(p, api):
    return os.path.exists(p["project_dir"]) or os.path.exists(p["secrets_dir"]) or labelled_objects(api, p["project"])


def present(p, api, check_mode, result):
    result.update(changed=False, written=[], removed=[])
    result["engine_version"] = api.version().get("Version", "")
    secrets_path = os.path.join(p["secrets_dir"], SECRETS_FILE)
    kept = read_json(secrets_path)
    if p["existing"]:
        if not os.path.exists(os.path.join(p["project_dir"], "docker-compose.yml")):
            raise ConfigError(
                "Project {} does not exist here ({} has no docker-compose.yml); create it first.".format(
                    p["project"], p["project_dir"]
                )
            )
        if kept is None:
            raise ConfigError(
                "Project {} does not exist here (no secrets under {}); create it first.".format(
                    p["project"], p["secrets_dir"]
                )
            )
    result["db_existed"] = bool(p["db_volume"]) and volume_exists(api, p["db_volume"])
    if kept is None and result["db_existed"] and not p["db_password"]:
        raise ConfigError(
            "The volume {} exists but {} does not: a new POSTGRES_PASSWORD would not match the database. Restore the "
            "secrets file, or delete the project with delete_volumes=true.".format(p["db_volume"], secrets_path)
        )
    secrets, fresh = plan_secrets(kept, p["generate"], p["predating"])
    if p["db_password"]:
        secrets["POSTGRES_PASSWORD"] = p["db_password"]
    if ensure_private_dir(p["secrets_dir"], check_mode):
        result["changed"] = True
    mode = os.stat(secrets_path).st_mode & 0o777 if kept is not None else None
    if fresh or kept != secrets or mode != 0o600:
        result["written"].append(secrets_path)
        if not check_mode:
            write_atomically(secrets_path, json.dumps(secrets, indent=2, sort_keys=True) + "\n", 0o600)
    # A no_log option's value is masked wherever it appears in the result: the caller has it.
    result["secrets"] = dict((k, v) for k, v in secrets.items() if not (p["db_password"] and k == "POSTGRES_PASSWORD"))

    keys_path = os.path.join(p["secrets_dir"], KEYS_FILE)
    _jwt_keys.validate_expiry_days(p["jwt_expiry_days"])
    stored, keys_mode = _jwt_keys.read_keys_file(keys_path)
    data, reasons = _jwt_keys.plan_keys(stored, p["jwt_issuer"], p["jwt_expiry_days"])
    if reasons or (stored is not None and keys_mode != _jwt_keys.KEYS_FILE_MODE):
        result["written"].append(keys_path)
        if not check_mode:
            _jwt_keys.write_keys_file(keys_path, data)
    result["jwt"] = dict((k, data[k]) for k in ("jwt_secret", "anon_key", "service_role_key"))

    result["ports"], allocated = allocate_ports(p, check_mode)
    result["changed"] = result["changed"] or bool(result["written"]) or allocated


def absent(p, check_mode):
    result = {"changed": False, "written": [], "removed": [], "existed": False}
    paths = [p["project_dir"]] + ([p["secrets_dir"]] if p["remove_secrets"] else [])
    for path in paths:
        if os.path.lexists(path):
            result["existed"] = True
            result["removed"].append(path)
            if not check_mode:
                shutil.rmtree(path)
    registry_path = p["port_registry"]
    if os.path.exists(registry_path):
        if check_mode:
            held = _port_registry.read_registry(registry_path)["projects"].get(p["project"])
        else:
            with _port_registry.locked(registry_path):
                registry = _port_registry.read_registry(registry_path)
                held = registry["projects"].get(p["project"])
                if held:
                    _port_registry.write_registry(
                        registry_path, _port_registry.with_project(registry, p["project"], None)
                    )
        if held:
            result["removed"].append("ports")
    result["changed"] = bool(result["removed"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            project_dir=dict(type="path", required=True),
            secrets_dir=dict(type="path", required=True),
            existing=dict(type="bool", default=False),
            generate=dict(type="dict", default={}),
            predating=dict(type="dict", default={}, no_log=True),
            db_volume=dict(type="str"),
            db_password=dict(type="str", default="", no_log=True),
            jwt_issuer=dict(type="str", default="supabase"),
            jwt_expiry_days=dict(type="int", default=1825),
            port_registry=dict(type="path", required=True),
            port_names=dict(
                type="list", elements="str", default=["kong_http", "kong_https", "postgres", "pooler_transaction"]
            ),
            port_range_start=dict(type="int", default=54320),
            port_range_end=dict(type="int", default=65535),
            bind_address=dict(type="str", default="0.0.0.0"),  # noqa: S104 - binds only to test, then closes
            remove_secrets=dict(type="bool", default=False),
            docker_host=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if not _jwt_keys.HAS_JWT:
        module.fail_json(
            msg=missing_required_lib("PyJWT", url="https://pypi.org/project/PyJWT/"),
            exception=_jwt_keys.JWT_IMPORT_ERROR,
        )
    p = module.params
    # existed goes with a failure too: the caller rolls back a new project, never an old one.
    result = {"existed": True}
    try:
        _port_registry.validate_project(p["project"])
        if p["state"] == "present":
            api = DockerAPI(p["docker_host"])
            result["existed"] = existed(p, api)
            present(p, api, module.check_mode, result)
        else:
            result = absent(p, module.check_mode)
    except (ConfigError, DockerError, _jwt_keys.JwtKeysError, _port_registry.PortRegistryError) as exc:
        module.fail_json(msg=str(exc), project=p["project"], existed=result["existed"])
    except OSError as exc:
        module.fail_json(
            msg="cannot keep the configuration of project {}: {}".format(p["project"], exc),
            exception=traceback.format_exc(),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
