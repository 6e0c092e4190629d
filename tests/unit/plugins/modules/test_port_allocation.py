"""Unit tests of the port registry logic behind supamanager.supabase.port_allocation."""

import errno
import fcntl
import json
import os
import socket
import stat

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils import _port_registry as reg


def registry_of(projects):
    return {"version": 1, "projects": projects}


def always_free(port):
    return True


@pytest.mark.parametrize("ref", ["abc", "abcdefghijklmnopqrst", "my-project-1", "a" * 40, "0ab"])
def test_valid_project_refs_are_accepted(ref):
    reg.validate_project(ref)


@pytest.mark.parametrize("ref", ["ab", "a" * 41, "Abc", "a_b", "-abc", "abc-", "a.bc", "", "ab c", "abc\n"])
def test_invalid_project_refs_are_refused(ref):
    with pytest.raises(reg.PortRegistryError, match="not a valid project ref"):
        reg.validate_project(ref)


def test_names_must_be_valid_and_unique():
    reg.validate_names(["kong_http", "postgres"])
    with pytest.raises(reg.PortRegistryError, match="listed more than once"):
        reg.validate_names(["kong_http", "kong_http"])
    with pytest.raises(reg.PortRegistryError, match="not valid"):
        reg.validate_names(["Kong-HTTP"])
    with pytest.raises(reg.PortRegistryError, match="at least one"):
        reg.validate_names([])


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [(0, 10, "range_start=0 is not a TCP port"), (1000, 65536, "range_end=65536"), (5000, 4999, "greater than")],
)
def test_bad_ranges_are_refused(start, end, message):
    with pytest.raises(reg.PortRegistryError, match=message):
        reg.validate_range(start, end)


def test_new_project_gets_the_lowest_free_ports_in_order():
    after, allocated = reg.plan_allocation(registry_of({}), "abc", ["a", "b", "c"], 100, 200, always_free)
    assert after == {"a": 100, "b": 101, "c": 102}
    assert allocated == after


def test_ports_of_other_projects_and_busy_ports_are_skipped():
    registry = registry_of({"other": {"x": 100, "y": 102}})
    busy = {101, 104}
    after, _ = reg.plan_allocation(registry, "abc", ["a", "b", "c"], 100, 200, lambda port: port not in busy)
    assert after == {"a": 103, "b": 105, "c": 106}


def test_existing_allocation_is_kept_even_when_its_port_is_in_use():
    registry = registry_of({"abc": {"a": 150, "b": 151}})
    after, allocated = reg.plan_allocation(registry, "abc", ["a", "b"], 100, 200, lambda port: False)
    assert after == {"a": 150, "b": 151}
    assert allocated == {}


def test_adding_a_name_allocates_only_that_one():
    registry = registry_of({"abc": {"a": 100, "b": 101}, "other": {"x": 102}})
    after, allocated = reg.plan_allocation(registry, "abc", ["a", "b", "c"], 100, 200, always_free)
    assert allocated == {"c": 103}
    assert after == {"a": 100, "b": 101, "c": 103}


def test_exhausted_range_names_the_range_and_leaves_the_registry_alone():
    registry = registry_of({"other": {"x": 100}})
    snapshot = json.dumps(registry, sort_keys=True)
    with pytest.raises(reg.RangeExhausted, match=r"port range 100-102 is exhausted.*b, c of project abc"):
        reg.plan_allocation(registry, "abc", ["a", "b", "c"], 100, 102, lambda port: port != 102)
    assert json.dumps(registry, sort_keys=True) == snapshot


def test_with_project_adds_replaces_and_removes_without_touching_the_input():
    registry = registry_of({"abc": {"a": 100}, "other": {"x": 101}})
    assert reg.with_project(registry, "abc", {"a": 100, "b": 102})["projects"]["abc"] == {"a": 100, "b": 102}
    assert reg.with_project(registry, "abc", None)["projects"] == {"other": {"x": 101}}
    assert registry["projects"]["abc"] == {"a": 100}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", 'no "projects" object'),
        ('{"version": 2, "projects": {}}', "version 2"),
        ('{"version": 1, "projects": {"abc": {"a": "80"}}}', "not a map of names to ports"),
        ('{"version": 1, "projects": {"abc": {"a": 70000}}}', "not a map of names to ports"),
    ],
)
def test_a_damaged_registry_is_reported(text, message):
    with pytest.raises(reg.PortRegistryError, match=message):
        reg.parse_registry(text, "/x/ports.json")


def test_missing_or_empty_registry_reads_as_empty(tmp_path):
    assert reg.read_registry(str(tmp_path / "none.json")) == reg.empty_registry()
    (tmp_path / "empty.json").write_text("")
    assert reg.read_registry(str(tmp_path / "empty.json")) == reg.empty_registry()


def test_write_is_atomic_0644_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "ports.json"
    old_umask = os.umask(0o077)
    try:
        reg.write_registry(str(path), registry_of({"abc": {"a": 100}}))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert reg.read_registry(str(path)) == registry_of({"abc": {"a": 100}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ports.json"]


def test_lock_creates_the_directory_0755_and_excludes_other_holders(tmp_path):
    path = tmp_path / "deep" / "dir" / "ports.json"
    old_umask = os.umask(0o077)
    try:
        with reg.locked(str(path)):
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
            # flock conflicts between open file descriptions, even inside one process.
            fd = os.open(str(path) + ".lock", os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        fd = os.open(str(path) + ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        os.umask(old_umask)


def test_port_with_a_listener_is_not_free_and_becomes_free_when_it_closes():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        assert not reg.port_is_free(port, "127.0.0.1")
        # A listener on one address blocks a bind on the wildcard address too.
        assert not reg.port_is_free(port, "0.0.0.0")  # noqa: S104 - a bind that is closed at once
    finally:
        listener.close()
    assert reg.port_is_free(port, "127.0.0.1")


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_an_ipv6_only_listener_blocks_the_wildcard_check():
    try:
        listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    listener.listen()
    port = listener.getsockname()[1]
    try:
        assert reg.port_is_free(port, "127.0.0.1")
        assert not reg.port_is_free(port, "0.0.0.0")  # noqa: S104 - a bind that is closed at once
    finally:
        listener.close()


def test_bind_address_that_is_not_local_is_refused():
    with pytest.raises(reg.PortRegistryError, match=r"bind_address 192\.0\.2\.1 cannot be used"):
        reg.check_bind_address("192.0.2.1")
    with pytest.raises(reg.PortRegistryError, match="bind_address not-an-address"):
        reg.check_bind_address("not-an-address")
    reg.check_bind_address("127.0.0.1")


def test_the_lock_file_is_the_owners_only(tmp_path):
    """flock works on a read-only descriptor: a lock file others can read is one they can hold."""
    path = tmp_path / "ports.json"
    lock = tmp_path / "ports.json.lock"
    with reg.locked(str(path)):
        pass
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    os.chmod(lock, 0o644)  # made by an older version
    with reg.locked(str(path)):
        pass
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_registry_or_directory_in_the_way_is_reported_and_left_alone(tmp_path):
    (tmp_path / "ports.json").mkdir()
    with pytest.raises(reg.PortRegistryError, match=r"cannot read .*ports\.json: .*Is a directory"):
        reg.read_registry(str(tmp_path / "ports.json"))
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(reg.PortRegistryError, match=r"cannot create directory .*a-file/dir: .*Not a directory"):
        reg.ensure_directory(str(tmp_path / "a-file" / "dir" / "ports.json"))
    assert (tmp_path / "a-file").read_text() == "x"


def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("not ours\n")
    target.chmod(0o644)
    (tmp_path / "ports.json.lock").symlink_to(target)
    with (
        pytest.raises(reg.PortRegistryError, match=r"cannot open lock file .*ports\.json\.lock"),
        reg.locked(str(tmp_path / "ports.json")),
    ):
        pytest.fail("the lock was taken through a link")
    assert target.read_text() == "not ours\n" and stat.S_IMODE(target.stat().st_mode) == 0o644


def sockets_fail(monkeypatch, family, code):
    """socket.socket refusing one address family, as on a host built without it: a failure this host
    cannot show (the tests above bind both families for real)."""
    real = socket.socket

    def make(fam=socket.AF_INET, *args, **kwargs):
        if fam == family:
            raise OSError(code, os.strerror(code))
        return real(fam, *args, **kwargs)

    monkeypatch.setattr(reg.socket, "socket", make)


def free_port():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_without_ipv6_an_ipv6_bind_address_is_refused_and_the_wildcard_check_uses_ipv4(monkeypatch):
    port = free_port()
    sockets_fail(monkeypatch, socket.AF_INET6, errno.EAFNOSUPPORT)
    with pytest.raises(reg.PortRegistryError, match=r"bind_address ::1 cannot be used: .*Address family not supported"):
        reg.check_bind_address("::1")
    assert reg.port_is_free(port, "0.0.0.0") is True  # noqa: S104 - a bind that is closed at once
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    try:
        assert reg.port_is_free(port, "0.0.0.0") is False  # noqa: S104 - a bind that is closed at once
    finally:
        listener.close()


def test_a_socket_that_cannot_be_made_for_another_reason_is_an_error(monkeypatch):
    port = free_port()
    sockets_fail(monkeypatch, socket.AF_INET6, errno.EMFILE)
    with pytest.raises(OSError, match="Too many open files"):
        reg.port_is_free(port, "0.0.0.0")  # noqa: S104 - a bind that is closed at once
