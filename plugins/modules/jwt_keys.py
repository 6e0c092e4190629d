#!/usr/bin/python
# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: jwt_keys
short_description: Mint the JWT secret and API keys of a Supabase project
version_added: 0.1.0
description:
  - Creates a project's JWT secret and its two API keys, the C(anon) key and the C(service_role) key, and keeps them in
    a file on the managed host, so that every later run returns the same values.
  - The keys are HS256 JSON Web Tokens signed with the secret, with the claims C(role) (V(anon) or V(service_role)),
    C(iss) (O(issuer)), C(iat) (when they were minted) and C(exp) (O(expiry_days) later), the way upstream Supabase's
    key generator makes them.
  - A generated secret is 64 random letters and digits, safe to use unquoted in C(.env) files, YAML and URLs.
  - Stored keys that no longer verify against the secret, that carry another issuer or role, or that expire within
    30 days are minted again. O(rotate=true) makes a new secret and new keys. A O(secret) that differs from the stored
    one makes new keys.
  - The file (O(path)) is JSON with the fields C(jwt_secret), C(anon_key) and C(service_role_key). It is written with
    mode C(0600) to a temporary file beside it, flushed to disk and renamed into place. A missing parent directory is
    created with mode C(0700).
  - The module runs on the managed host and needs the Python library PyJWT there.
  - B(Set no_log on the task.) The results hold the secret and the keys. An action plugin marks every result of this
    module as C(no_log) anyway, so the output of ansible-playbook, AWX and ansible-runner shows no secret even when the
    task forgets to; a registered variable still holds the values.
extends_documentation_fragment:
  - supamanager.supabase._attributes
  - supamanager.supabase._attributes.action
attributes:
  action:
    details:
      - The module mints on the managed host. The action plugin marks the result C(no_log), and puts a given O(secret)
        back into RV(jwt_secret), where the module had to mask it like every value of a C(no_log) option.
  check_mode:
    support: full
    details:
      - In check mode, when there is no keys file yet, the returned secret and keys are a preview that is not kept.
  diff_mode:
    support: partial
    details:
      - The diff shows whether the secret changes and the claims of both keys, never the secret or the keys.
      - Because the results are always C(no_log), the diff is only visible in a registered variable.
  idempotent:
    support: partial
    details:
      - O(rotate=true) makes new keys on every run.
      - Keys are minted again once they expire within 30 days.
options:
  path:
    description:
      - The file on the managed host where the secret and the keys persist.
    type: path
    required: true
  issuer:
    description:
      - The C(iss) claim of the keys.
      - Stored keys with another issuer are minted again.
    type: str
    default: supabase
  expiry_days:
    description:
      - How many days new keys stay valid (C(exp) minus C(iat)). The default is about five years, as upstream.
      - Must be more than 30, since keys that expire within 30 days are minted again on every run.
      - Changing it does not re-mint keys that still serve; use O(rotate=true) for that.
    type: int
    default: 1825
  rotate:
    description:
      - Make a new secret and new keys, even if the stored ones serve.
      - Every container that uses the secret or the keys must be restarted with the new values afterwards.
    type: bool
    default: false
  secret:
    description:
      - Use this JWT secret instead of the stored or a generated one. At least 32 characters, without quotes or line
        breaks.
      - When it differs from the stored secret, new keys are minted with it.
      - Mutually exclusive with O(rotate=true).
    type: str
requirements:
  - PyJWT >= 2.0 on the managed host
seealso:
  - module: supamanager.supabase.port_allocation
  - name: Supabase self-hosting, API keys
    description: How upstream generates the secret and the keys.
    link: https://supabase.com/docs/guides/self-hosting/docker#generate-api-keys
author:
  - SupaManager developers (@supamanager)
"""

EXAMPLES = r"""
---
- name: Mint the secret and API keys of project abcdefghijklmnopqrst
  supamanager.supabase.jwt_keys:
    path: /var/lib/supamanager/projects/abcdefghijklmnopqrst/jwt.json
  register: project_jwt
  no_log: true

- name: Rotate the secret and the keys
  supamanager.supabase.jwt_keys:
    path: /var/lib/supamanager/projects/abcdefghijklmnopqrst/jwt.json
    rotate: true
  register: project_jwt
  no_log: true

- name: Keep a secret from elsewhere, with keys that say who issued them
  supamanager.supabase.jwt_keys:
    path: /var/lib/supamanager/projects/demo/jwt.json
    secret: "{{ vault_demo_jwt_secret }}"
    issuer: supamanager
    expiry_days: 365
  register: project_jwt
  no_log: true
"""

RETURN = r"""
jwt_secret:
  description:
    - The JWT secret that signs the keys. Secret.
    - When O(secret) is given, the same value.
  returned: success
  type: str
  sample: VALUE_HIDDEN
anon_key:
  description:
    - The API key with the role C(anon), a JWT. Secret.
  returned: success
  type: str
  sample: VALUE_HIDDEN
service_role_key:
  description:
    - The API key with the role C(service_role), a JWT. Secret.
  returned: success
  type: str
  sample: VALUE_HIDDEN
expires_at:
  description:
    - When the earlier of the two keys expires, in ISO 8601 UTC.
  returned: success
  type: str
  sample: "2031-11-24T00:00:00Z"
reasons:
  description:
    - Why the module minted (or would mint, in check mode) new keys or rewrote the file. Empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample:
    - anon_key does not verify, has other claims or expires within 30 days
path:
  description:
    - The path of the keys file.
  returned: success
  type: str
  sample: /var/lib/supamanager/projects/abcdefghijklmnopqrst/jwt.json
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.supamanager.supabase.plugins.module_utils._jwt_keys import (
    HAS_JWT,
    JWT_IMPORT_ERROR,
    KEYS_FILE_MODE,
    ROLES,
    JwtKeysError,
    expires_at,
    plan_keys,
    read_keys_file,
    unverified_claims,
    validate_expiry_days,
    validate_secret,
    write_keys_file,
)


def _public_view(data, mode):
    """What the diff may show of a keys file: no secret, no key, only the claims."""
    if data is None:
        return {"exists": False}
    view = {"exists": True, "mode": f"{mode:04o}" if mode is not None else None}
    for field in ROLES:
        view[field] = unverified_claims(data.get(field))
    return view


def run(module):
    p = module.params
    path = p["path"]
    stored, mode = read_keys_file(path)
    data, reasons = plan_keys(stored, p["issuer"], p["expiry_days"], rotate=p["rotate"], secret=p["secret"])
    if stored is not None and mode != KEYS_FILE_MODE:
        reasons.append(f"file mode is {mode:04o}, should be {KEYS_FILE_MODE:04o}")
    changed = bool(reasons)
    if changed and not module.check_mode:
        write_keys_file(path, data)

    result = {
        "changed": changed,
        "path": path,
        "reasons": reasons,
        "jwt_secret": data["jwt_secret"],
        "anon_key": data["anon_key"],
        "service_role_key": data["service_role_key"],
        "expires_at": expires_at(data),
    }
    if module._diff:
        before = _public_view(stored, mode)
        after = _public_view(data, KEYS_FILE_MODE)
        secret_changed = stored is None or stored.get("jwt_secret") != data["jwt_secret"]
        before["jwt_secret"] = "unchanged" if not secret_changed else ("absent" if stored is None else "old")
        after["jwt_secret"] = "unchanged" if not secret_changed else "new"
        result["diff"] = {"before": before, "after": after, "before_header": path, "after_header": path}
    return result


def main():
    argument_spec = dict(
        path=dict(type="path", required=True),
        issuer=dict(type="str", default="supabase"),
        expiry_days=dict(type="int", default=1825),
        rotate=dict(type="bool", default=False),
        secret=dict(type="str", no_log=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_JWT:
        module.fail_json(
            msg=missing_required_lib("PyJWT", url="https://pypi.org/project/PyJWT/"), exception=JWT_IMPORT_ERROR
        )
    p = module.params
    try:
        if not p["issuer"]:
            raise JwtKeysError("issuer must not be empty")
        validate_expiry_days(p["expiry_days"])
        if p["secret"] is not None:
            if p["rotate"]:
                raise JwtKeysError("rotate=true makes a new secret, so it cannot be combined with secret")
            validate_secret(p["secret"])
        result = run(module)
    except JwtKeysError as exc:
        module.fail_json(msg=str(exc), path=p["path"])
    except OSError as exc:
        module.fail_json(msg=f"cannot write the keys file {p['path']}: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
