# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

"""JWT secret and API keys of a Supabase project, for the jwt_keys module.

Private to this collection: the interface may change without notice.

The keys file is JSON with mode 0600::

    {"jwt_secret": "...", "anon_key": "<JWT>", "service_role_key": "<JWT>"}

Everything else (issuer, issue and expiry times) is read back from the keys' own claims.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import secrets
import string
import time
import traceback

from ansible_collections.supamanager.supabase.plugins.module_utils._atomic_file import write_atomically

try:
    import jwt

    HAS_JWT = True
    JWT_IMPORT_ERROR = None
except ImportError:
    HAS_JWT = False
    JWT_IMPORT_ERROR = traceback.format_exc()

ALGORITHM = "HS256"
ROLES = {"anon_key": "anon", "service_role_key": "service_role"}
KEYS_FILE_MODE = 0o600
KEYS_DIR_MODE = 0o700
SECRET_LENGTH = 64
# PostgREST and GoTrue refuse HS256 secrets shorter than 32 characters.
MIN_SECRET_LENGTH = 32
# Keys that expire sooner than this are minted again, so a project never runs into its keys' expiry.
RENEW_BEFORE_SECONDS = 30 * 86400
DAY = 86400
# Letters and digits only: safe unquoted in .env files, YAML, shell and URLs.
SECRET_ALPHABET = string.ascii_letters + string.digits


class JwtKeysError(Exception):
    """A problem the caller should report as the module's failure message."""


def generate_secret(length=SECRET_LENGTH):
    return "".join(secrets.choice(SECRET_ALPHABET) for dummy in range(length))


def validate_secret(secret):
    if len(secret) < MIN_SECRET_LENGTH:
        raise JwtKeysError(
            f"secret is {len(secret)} characters long; an HS256 secret needs at least {MIN_SECRET_LENGTH}"
        )
    if secret != secret.strip() or any(ch in secret for ch in "\r\n\"'"):
        raise JwtKeysError("secret must not contain quotes, line breaks or leading or trailing spaces")


def validate_expiry_days(expiry_days):
    if expiry_days * DAY <= RENEW_BEFORE_SECONDS:
        raise JwtKeysError(
            f"expiry_days={expiry_days} is too short: keys that expire within 30 days are minted again on every run, "
            "so use more than 30"
        )


def mint(secret, role, issuer, issued_at, expiry_days):
    payload = {"role": role, "iss": issuer, "iat": issued_at, "exp": issued_at + expiry_days * DAY}
    token = jwt.encode(payload, secret, algorithm=ALGORITHM)
    # pyjwt 1.x returns bytes.
    return token.decode("ascii") if isinstance(token, bytes) else token


def key_claims(token, secret, role, issuer, now):
    """The claims of a key that verifies against the secret and still serves, or None.

    A key serves when its signature, role and issuer match and it expires no sooner than 30 days from now.
    """
    if not isinstance(token, str) or not token:
        return None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            # Time is judged against ``now`` below, so that one clock decides, and tests can move it.
            options={"require": ["exp", "iat", "iss"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("role") != role or not isinstance(claims["exp"], int) or claims["exp"] - now < RENEW_BEFORE_SECONDS:
        return None
    return claims


def unverified_claims(token):
    """Claims of a token without checking it, for the diff only (claims are not secret)."""
    if not isinstance(token, str) or not token:
        return None
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None


def parse_keys_file(text, path="keys file"):
    try:
        data = json.loads(text)
    except ValueError:
        # The parser's message may quote the file's content, which is secret.
        raise JwtKeysError(f"{path} is not valid JSON; repair it, or remove it to mint a new secret and keys") from None
    if not isinstance(data, dict) or not isinstance(data.get("jwt_secret"), str) or not data["jwt_secret"]:
        raise JwtKeysError(f'{path} has no "jwt_secret" string; repair it, or remove it to mint a new secret and keys')
    return data


def read_keys_file(path):
    """The stored keys and the file's mode, or (None, None) when there is no file."""
    try:
        with open(path) as handle:
            text = handle.read()
            mode = os.fstat(handle.fileno()).st_mode & 0o7777
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        raise JwtKeysError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_keys_file(text, path), mode


def write_keys_file(path, data):
    """Write the keys atomically: a 0600 temporary file beside the target, fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, KEYS_DIR_MODE)
        except OSError as exc:
            raise JwtKeysError(f"cannot create directory {directory}: {exc.strerror}") from exc
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n", KEYS_FILE_MODE)


def plan_keys(stored, issuer, expiry_days, rotate=False, secret=None, now=None):
    """Decide the secret and keys; pure apart from random secrets and the clock.

    Returns ``(data, reasons)``: the content the keys file should have and why it differs from
    ``stored`` (an empty list when the stored keys serve as they are).
    """
    now = int(time.time()) if now is None else int(now)
    stored = stored or {}
    reasons = []
    if rotate:
        new_secret = secret if secret is not None else generate_secret()
        reasons.append("rotate requested")
    elif secret is not None:
        new_secret = secret
        if stored.get("jwt_secret") != secret:
            reasons.append("new secret given" if stored else "no keys file yet")
    elif stored.get("jwt_secret"):
        new_secret = stored["jwt_secret"]
    else:
        new_secret = generate_secret()
        reasons.append("no keys file yet")

    data = {"jwt_secret": new_secret}
    remint = bool(reasons)
    if not remint:
        for field, role in ROLES.items():
            if key_claims(stored.get(field), new_secret, role, issuer, now) is None:
                reasons.append(f"{field} does not verify, has other claims or expires within 30 days")
                remint = True
    for field, role in ROLES.items():
        data[field] = mint(new_secret, role, issuer, now, expiry_days) if remint else stored[field]
    return data, reasons


def expires_at(data):
    """The earlier expiry of the two keys, as an ISO 8601 UTC timestamp."""
    exp = min(unverified_claims(data[field])["exp"] for field in ROLES)
    return datetime.datetime.fromtimestamp(exp, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
