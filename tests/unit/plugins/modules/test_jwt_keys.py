"""Unit tests of the key minting logic behind supamanager.supabase.jwt_keys."""

import json
import os
import stat
import string
import time

import jwt
import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils import _jwt_keys as keys

DAY = 86400
NOW = int(time.time()) - 60


def decode(token, secret, issuer="supabase", future_iat=False):
    """Verify signature, algorithm and issuer; pyjwt refuses an iat in the future unless told otherwise."""
    options = {"require": ["exp", "iat", "iss"], "verify_iat": not future_iat}
    return jwt.decode(token, secret, algorithms=["HS256"], issuer=issuer, options=options)


def test_generated_secrets_are_long_url_and_env_safe_and_distinct():
    secrets = {keys.generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(secret) >= 40
        assert set(secret) <= set(string.ascii_letters + string.digits)


def test_first_run_mints_a_secret_and_keys_with_upstream_claims():
    data, reasons = keys.plan_keys(None, "supabase", 1825, now=NOW)
    assert reasons == ["no keys file yet"]
    for field, role in (("anon_key", "anon"), ("service_role_key", "service_role")):
        assert jwt.get_unverified_header(data[field])["alg"] == "HS256"
        claims = decode(data[field], data["jwt_secret"])
        assert claims == {"role": role, "iss": "supabase", "iat": NOW, "exp": NOW + 1825 * DAY}


def test_stored_keys_that_serve_are_kept():
    first, _ = keys.plan_keys(None, "supabase", 1825, now=NOW)
    second, reasons = keys.plan_keys(first, "supabase", 1825, now=NOW + 100 * DAY)
    assert reasons == []
    assert second == first


def test_keys_that_expire_within_30_days_are_minted_again_with_the_same_secret():
    first, _ = keys.plan_keys(None, "supabase", 365, now=NOW)
    later = NOW + 336 * DAY  # 29 days before expiry
    second, reasons = keys.plan_keys(first, "supabase", 365, now=later)
    assert second["jwt_secret"] == first["jwt_secret"]
    assert second["anon_key"] != first["anon_key"]
    assert decode(second["anon_key"], second["jwt_secret"], future_iat=True)["exp"] == later + 365 * DAY
    assert any("expires within 30 days" in reason for reason in reasons)
    # 31 days before expiry the keys still serve.
    third, reasons = keys.plan_keys(first, "supabase", 365, now=NOW + 334 * DAY)
    assert (third, reasons) == (first, [])


def test_keys_that_do_not_verify_or_carry_other_claims_are_minted_again():
    first, _ = keys.plan_keys(None, "supabase", 1825, now=NOW)
    forged = dict(
        first, anon_key=jwt.encode({"role": "anon", "iss": "supabase", "iat": NOW, "exp": NOW + 9 * 10**7}, "x" * 40)
    )
    second, reasons = keys.plan_keys(forged, "supabase", 1825, now=NOW)
    assert reasons == ["anon_key does not verify, has other claims or expires within 30 days"]
    assert decode(second["anon_key"], first["jwt_secret"])["role"] == "anon"

    swapped = dict(first, anon_key=first["service_role_key"])
    _, reasons = keys.plan_keys(swapped, "supabase", 1825, now=NOW)
    assert reasons == ["anon_key does not verify, has other claims or expires within 30 days"]

    third, reasons = keys.plan_keys(first, "supamanager", 1825, now=NOW)
    assert len(reasons) == 2
    assert decode(third["service_role_key"], first["jwt_secret"], issuer="supamanager")["iss"] == "supamanager"


def test_rotate_makes_a_new_secret_and_new_keys():
    first, _ = keys.plan_keys(None, "supabase", 1825, now=NOW)
    second, reasons = keys.plan_keys(first, "supabase", 1825, rotate=True, now=NOW)
    assert reasons == ["rotate requested"]
    assert second["jwt_secret"] != first["jwt_secret"]
    assert decode(second["anon_key"], second["jwt_secret"])["role"] == "anon"
    with pytest.raises(jwt.InvalidSignatureError):
        decode(second["anon_key"], first["jwt_secret"])


def test_a_given_secret_is_used_and_a_different_one_makes_new_keys():
    given = "g" * 40
    first, reasons = keys.plan_keys(None, "supabase", 1825, secret=given, now=NOW)
    assert first["jwt_secret"] == given
    assert decode(first["anon_key"], given)["role"] == "anon"
    same, reasons = keys.plan_keys(first, "supabase", 1825, secret=given, now=NOW + DAY)
    assert (same, reasons) == (first, [])
    other, reasons = keys.plan_keys(first, "supabase", 1825, secret="h" * 40, now=NOW + DAY)
    assert reasons == ["new secret given"]
    assert decode(other["service_role_key"], "h" * 40, future_iat=True)["iat"] == NOW + DAY


def test_short_or_unsafe_secrets_and_short_expiry_are_refused():
    with pytest.raises(keys.JwtKeysError, match="at least 32"):
        keys.validate_secret("s" * 31)
    with pytest.raises(keys.JwtKeysError, match="quotes, line breaks"):
        keys.validate_secret("s" * 40 + "\n")
    keys.validate_secret("s" * 32)
    with pytest.raises(keys.JwtKeysError, match="expiry_days=30 is too short"):
        keys.validate_expiry_days(30)
    keys.validate_expiry_days(31)


def test_a_damaged_keys_file_is_reported_without_its_content(tmp_path):
    path = tmp_path / "jwt.json"
    path.write_text('{"jwt_secret": "topsecretvalue", broken')
    with pytest.raises(keys.JwtKeysError) as info:
        keys.read_keys_file(str(path))
    assert "not valid JSON" in str(info.value)
    assert "topsecretvalue" not in str(info.value)
    path.write_text('{"anon_key": "x"}')
    with pytest.raises(keys.JwtKeysError, match='no "jwt_secret"'):
        keys.read_keys_file(str(path))


def test_keys_file_is_written_0600_in_a_new_0700_directory_whatever_the_umask(tmp_path):
    path = tmp_path / "project" / "jwt.json"
    data, _ = keys.plan_keys(None, "supabase", 1825)
    old_umask = os.umask(0)
    try:
        keys.write_keys_file(str(path), data)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == data
    stored, mode = keys.read_keys_file(str(path))
    assert (stored, mode) == (data, 0o600)
    assert [p.name for p in path.parent.iterdir()] == ["jwt.json"]


def test_expires_at_is_the_earlier_expiry_in_utc():
    data, _ = keys.plan_keys(None, "supabase", 1825, now=NOW)
    assert keys.expires_at(data) == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW + 1825 * DAY))


def test_a_missing_or_damaged_key_is_minted_again_with_the_kept_secret():
    first, _ = keys.plan_keys(None, "supabase", 1825, now=NOW)
    without = {field: value for field, value in first.items() if field != "anon_key"}
    for damaged in (without, dict(first, anon_key=""), dict(first, anon_key=42), dict(first, anon_key="not.a.jwt")):
        again, reasons = keys.plan_keys(damaged, "supabase", 1825, now=NOW)
        assert reasons == ["anon_key does not verify, has other claims or expires within 30 days"]
        assert again["jwt_secret"] == first["jwt_secret"]
        assert decode(again["anon_key"], first["jwt_secret"])["role"] == "anon"
    # What the module's diff shows of such a key: no claims (and never the value).
    assert keys.unverified_claims(None) is None and keys.unverified_claims("not.a.jwt") is None
    assert keys.unverified_claims(first["anon_key"])["role"] == "anon"
