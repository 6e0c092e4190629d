#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: edge_route
short_description: Add or remove a route of the host's edge proxy (Caddy) without dropping connections
version_added: 0.1.0
description:
  - Writes or removes one route file in the edge directory (O(root)/routes/O(name).json), builds the whole Caddy
    configuration from the edge's settings and every route (O(root)/caddy.json), and, when Caddy answers on its admin
    socket, loads it through the admin API (C(POST /load)), a graceful switch, so connections to other routes keep
    flowing.
  - Without O(name), only rebuilds and loads the configuration (the edge role does this after changing settings).
  - A route sends C(https://<host>) for each of O(hosts) to O(upstream); the edge redirects plain HTTP for those names
    to HTTPS, answers any other name with 404, and holds a certificate only for names that have a route.
  - Runs under a lock on the edge directory, so two projects can add their routes at the same time.
extends_documentation_fragment:
  - supamanager.supabase._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  root:
    description:
      - The edge directory the edge role made (it holds C(settings.json)).
    type: path
    required: true
  name:
    description:
      - The route's name, a lowercase slug of 1-63 characters. The project role uses V(project-<ref>).
    type: str
  hosts:
    description:
      - The host names the route serves (lowercase DNS names). Required with O(state=present) and O(name).
      - A name another route already serves is refused.
    type: list
    elements: str
    default: []
  upstream:
    description:
      - Where the route sends requests, V(host:port), e.g. the project's gateway on loopback V(127.0.0.1:54321).
    type: str
  pooler:
    description:
      - The project's own pooler, for the host's TLS Postgres front (role supamanager.supabase.edge). A connection whose
        user name ends in C(.<tenant>) goes to O(pooler.session) or O(pooler.transaction), by the port it came to.
      - Kept in O(root)/pooler-routes.json, which the front reads again when it changes. Omit it for a route that is
        not a project's.
    type: dict
    suboptions:
      tenant:
        description: The project's ref (the suffix of C(postgres.<ref>)).
        type: str
        required: true
      session:
        description: The project's session-mode pooler, V(host:port).
        type: str
        required: true
      transaction:
        description: The project's transaction-mode pooler, V(host:port).
        type: str
        required: true
  state:
    description:
      - V(present) adds or updates the route, V(absent) removes it (an absent route is fine).
    type: str
    choices: [present, absent]
    default: present
  require_running:
    description:
      - Fail when Caddy does not answer on its admin socket. V(false) writes the files only; Caddy reads them when it
        starts.
    type: bool
    default: false
  obtain_certificates:
    description:
      - After loading, make Caddy obtain a certificate for each of O(hosts) (a TLS handshake with the name, again
        until it completes) and fail if it has none within two minutes. The project role does this for a custom
        hostname before it switches the project's URLs to it.
    type: bool
    default: false
seealso:
  - name: Caddy's admin API
    description: POST /load replaces the running configuration gracefully.
    link: https://caddyserver.com/docs/api
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Route https://shop.example.com to the project's gateway
  supamanager.supabase.edge_route:
    root: /var/lib/supamanager/edge
    name: project-shop
    hosts: [shop.example.com]
    upstream: 127.0.0.1:54321
    pooler:
      tenant: shop
      session: 127.0.0.1:54322
      transaction: 127.0.0.1:54323

- name: Remove it
  supamanager.supabase.edge_route:
    root: /var/lib/supamanager/edge
    name: project-shop
    state: absent
"""

RETURN = r"""
route_changed:
  description: Whether the route file was written or removed (or would be, in check mode).
  returned: success
  type: bool
config_changed:
  description: Whether C(caddy.json) differed from what the settings and routes give.
  returned: success
  type: bool
running:
  description: Whether Caddy answered on its admin socket.
  returned: success
  type: bool
loaded:
  description: Whether the configuration was loaded into the running Caddy (an identical one is a no-op for Caddy).
  returned: success
  type: bool
pooler_routes_changed:
  description: Whether C(pooler-routes.json), what the Postgres front reads, was written (or would be).
  returned: success
  type: bool
config_path:
  description: The Caddy configuration file.
  returned: success
  type: str
  sample: /var/lib/supamanager/edge/caddy.json
hosts:
  description: Every host name the edge serves after this run.
  returned: success
  type: list
  elements: str
  sample: [shop.example.com]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supamanager.supabase.plugins.module_utils._edge_config import EdgeConfigError, apply


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            name=dict(type="str"),
            hosts=dict(type="list", elements="str", default=[]),
            upstream=dict(type="str"),
            pooler=dict(
                type="dict",
                options=dict(
                    tenant=dict(type="str", required=True),
                    session=dict(type="str", required=True),
                    transaction=dict(type="str", required=True),
                ),
            ),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            require_running=dict(type="bool", default=False),
            obtain_certificates=dict(type="bool", default=False),
        ),
        required_if=[("state", "absent", ["name"])],
        supports_check_mode=True,
    )
    p = module.params
    route = None
    if p["name"] is not None and p["state"] == "present":
        route = {"name": p["name"], "hosts": p["hosts"], "upstream": p["upstream"] or ""}
        if p["pooler"]:
            route["pooler"] = p["pooler"]
    try:
        result = apply(
            p["root"],
            route=route,
            state=p["state"],
            name=p["name"],
            check_mode=module.check_mode,
            require_running=p["require_running"],
            obtain=p["obtain_certificates"],
        )
    except EdgeConfigError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot update the edge at {p['root']}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
