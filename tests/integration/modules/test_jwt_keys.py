"""supamanager.supabase.jwt_keys through ansible-playbook: real files, real pyjwt, real interpreters."""

import json
import stat
import subprocess
import sys
import time

import jwt
import pytest

MODULE = "supamanager.supabase.jwt_keys"
DAY = 86400


def verified_claims(token, secret, issuer="supabase"):
    return jwt.decode(token, secret, algorithms=["HS256"], issuer=issuer, options={"require": ["exp", "iat", "iss"]})


def assert_no_secret_in(outputs, *values):
    # A plain flag: pytest would print the secret when it explains a failed `in` comparison.
    leaked = any(value in output for output in outputs for value in values)
    assert not leaked, "a secret or key appears in the playbook output"


@pytest.fixture
def keys_file(tmp_path):
    return tmp_path / "projects" / "abc" / "jwt.json"


def test_check_apply_idempotence_claims_mode_and_no_secret_in_output(playbook, keys_file):
    args = {"path": str(keys_file)}

    checked = playbook(MODULE, args, check=True, diff=True, verbosity=2)
    assert checked["changed"] is True
    assert checked["reasons"] == ["no keys file yet"]
    assert not keys_file.parent.exists()

    before = int(time.time())
    applied = playbook(MODULE, args, diff=True, verbosity=2)
    after = int(time.time())
    assert applied["changed"] is True
    secret = applied["jwt_secret"]
    assert len(secret) >= 40
    assert secret.isalnum()
    for field, role in (("anon_key", "anon"), ("service_role_key", "service_role")):
        assert jwt.get_unverified_header(applied[field]) == {"alg": "HS256", "typ": "JWT"}
        claims = verified_claims(applied[field], secret)
        assert set(claims) == {"role", "iss", "iat", "exp"}
        assert claims["role"] == role
        assert claims["iss"] == "supabase"
        assert before <= claims["iat"] <= after
        assert claims["exp"] == claims["iat"] + 1825 * DAY
    assert applied["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert applied["diff"]["after"]["anon_key"]["role"] == "anon"
    assert applied["diff"]["after"]["jwt_secret"] == "new"

    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_file.parent.stat().st_mode) == 0o700
    stored = json.loads(keys_file.read_text())
    assert stored == {k: applied[k] for k in ("jwt_secret", "anon_key", "service_role_key")}

    rechecked = playbook(MODULE, args, check=True, diff=True)
    reapplied = playbook(MODULE, args, diff=True, verbosity=2)
    for result in (rechecked, reapplied):
        assert result["changed"] is False
        assert result["reasons"] == []
        assert {k: result[k] for k in stored} == stored
    assert reapplied["diff"]["before"] == reapplied["diff"]["after"]
    assert json.loads(keys_file.read_text()) == stored

    # The tasks above have no no_log: the action plugin hides the results anyway, even at -vv with --diff.
    assert_no_secret_in(playbook.outputs, secret, applied["anon_key"], applied["service_role_key"])
    assert any("the output has been hidden" in output for output in playbook.outputs)


def test_rotate_makes_a_new_secret_and_keys(playbook, keys_file):
    first = playbook(MODULE, {"path": str(keys_file)})
    rotated = playbook(MODULE, {"path": str(keys_file), "rotate": True})
    assert rotated["changed"] is True
    assert rotated["reasons"] == ["rotate requested"]
    assert rotated["jwt_secret"] != first["jwt_secret"]
    for field in ("anon_key", "service_role_key"):
        assert rotated[field] != first[field]
        verified_claims(rotated[field], rotated["jwt_secret"])
        with pytest.raises(jwt.InvalidSignatureError):
            verified_claims(rotated[field], first["jwt_secret"])
    assert json.loads(keys_file.read_text())["jwt_secret"] == rotated["jwt_secret"]
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert playbook(MODULE, {"path": str(keys_file)})["changed"] is False


def test_keys_that_expire_soon_or_do_not_verify_are_minted_again(playbook, keys_file):
    first = playbook(MODULE, {"path": str(keys_file)})
    secret = first["jwt_secret"]
    now = int(time.time())
    soon = jwt.encode({"role": "anon", "iss": "supabase", "iat": now - 1800 * DAY, "exp": now + 10 * DAY}, secret)
    forged = jwt.encode({"role": "service_role", "iss": "supabase", "iat": now, "exp": now + 900 * DAY}, "f" * 40)
    keys_file.write_text(json.dumps({"jwt_secret": secret, "anon_key": soon, "service_role_key": forged}))
    keys_file.chmod(0o600)

    reminted = playbook(MODULE, {"path": str(keys_file)})
    assert reminted["changed"] is True
    assert len(reminted["reasons"]) == 2
    assert reminted["jwt_secret"] == secret
    for field in ("anon_key", "service_role_key"):
        claims = verified_claims(reminted[field], secret)
        assert claims["exp"] - claims["iat"] == 1825 * DAY
        assert claims["iat"] >= now
    assert playbook(MODULE, {"path": str(keys_file)})["changed"] is False


def test_a_given_secret_is_used_and_never_shown(playbook, keys_file):
    first = playbook(MODULE, {"path": str(keys_file)})
    given = "Given" * 10
    task = {"no_log": True}
    with_given = playbook(MODULE, {"path": str(keys_file), "secret": given}, task_extra=task, verbosity=3)
    assert with_given["changed"] is True
    assert with_given["reasons"] == ["new secret given"]
    assert with_given["jwt_secret"] == given
    assert verified_claims(with_given["anon_key"], given)["role"] == "anon"
    again = playbook(MODULE, {"path": str(keys_file), "secret": given}, verbosity=3)
    assert again["changed"] is False
    assert again["anon_key"] == with_given["anon_key"]
    assert_no_secret_in(playbook.outputs, given, first["jwt_secret"], with_given["anon_key"])


def test_a_keys_file_with_a_loose_mode_is_tightened(playbook, keys_file):
    first = playbook(MODULE, {"path": str(keys_file)})
    keys_file.chmod(0o644)
    fixed = playbook(MODULE, {"path": str(keys_file)})
    assert fixed["changed"] is True
    assert fixed["reasons"] == ["file mode is 0644, should be 0600"]
    assert fixed["anon_key"] == first["anon_key"]
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"secret": "short"}, "secret is 5 characters long; an HS256 secret needs at least 32"),
        ({"expiry_days": 30}, "expiry_days=30 is too short"),
        ({"rotate": True, "secret": "s" * 40}, "cannot be combined with secret"),
        ({"issuer": ""}, "issuer must not be empty"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(playbook, keys_file, args, message):
    result = playbook(MODULE, {"path": str(keys_file), **args})
    assert result["failed"] is True
    assert message in result["msg"]
    assert not keys_file.parent.exists()


def test_a_damaged_keys_file_is_reported_and_left_alone(playbook, keys_file):
    keys_file.parent.mkdir(parents=True)
    keys_file.write_text('{"jwt_secret": "half-written')
    result = playbook(MODULE, {"path": str(keys_file)})
    assert result["failed"] is True
    assert "is not valid JSON" in result["msg"]
    assert "half-written" not in result["msg"]
    assert keys_file.read_text() == '{"jwt_secret": "half-written'


def test_missing_pyjwt_on_the_managed_host_fails_with_install_guidance(playbook, keys_file, tmp_path):
    # A bare virtual environment: the standard library only, no PyJWT.
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    assert subprocess.run([python, "-c", "import jwt"], capture_output=True).returncode != 0
    # Nor coverage.py: scripts/test's module coverage (AnsiballZ) is off for this interpreter.
    playbook.env = {k: v for k, v in playbook.env.items() if not k.startswith("_ANSIBLE_COVERAGE_")}

    result = playbook(MODULE, {"path": str(keys_file)}, host_vars={"ansible_python_interpreter": python})
    assert result["failed"] is True
    assert "Failed to import the required Python library (PyJWT)" in result["msg"]
    assert "https://pypi.org/project/PyJWT/" in result["msg"]
    assert not keys_file.parent.exists()
