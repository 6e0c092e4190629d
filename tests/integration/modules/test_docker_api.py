"""The collection's small Docker client (module_utils/_docker_api.py) against the real engine:
list by label, inspect, exec and its exit code, stop, restart, remove, networks (and disconnecting from them),
volumes, errors."""

import secrets
import subprocess
import time

import pytest
from ansible_collections.supamanager.supabase.plugins.module_utils import _docker_api as api_mod

pytestmark = pytest.mark.docker

IMAGE = "standin.local/base:bookworm"


@pytest.fixture
def labelled():
    """One running container, a network and a volume, all labelled with a random value; removed afterwards."""
    value = f"dockerapi-{secrets.token_hex(4)}"
    label = f"supamanager.test={value}"
    subprocess.run(["docker", "network", "create", "--label", label, value], check=True, capture_output=True)
    subprocess.run(["docker", "volume", "create", "--label", label, value], check=True, capture_output=True)
    run = ["docker", "run", "-d", "--name", value, "--label", label, "--network", value, "--stop-timeout", "1"]
    subprocess.run([*run, IMAGE, "sleep", "infinity"], check=True, capture_output=True)
    try:
        yield value, label
    finally:
        subprocess.run(["docker", "rm", "-f", value], capture_output=True)
        subprocess.run(["docker", "network", "rm", value], capture_output=True)
        subprocess.run(["docker", "volume", "rm", value], capture_output=True)


def wait_exec(api, exec_id):
    for _ in range(200):
        result = api.exec_inspect(exec_id)
        if not result["Running"]:
            return result["ExitCode"]
        time.sleep(0.05)
    raise AssertionError("exec did not finish")


def test_list_inspect_exec_stop_remove(labelled):
    name, label = labelled
    api = api_mod.DockerAPI()
    assert api.version()["ApiVersion"]
    [found] = api.containers(label)
    assert found["Names"] == [f"/{name}"] and found["State"] == "running"
    info = api.inspect(name)
    assert info["State"]["Running"] and name in info["NetworkSettings"]["Networks"]
    assert wait_exec(api, api.exec_start(name, ["true"])) == 0
    assert wait_exec(api, api.exec_start(name, ["sh", "-c", "exit 3"])) == 3
    api.stop(name)
    assert api.inspect(name)["State"]["Running"] is False
    api.start(name)
    started = api.inspect(name)["State"]
    assert started["Running"] is True
    api.restart(name)  # in place: the same container, started again
    again = api.inspect(name)
    assert again["Id"] == info["Id"] and again["State"]["Running"] is True
    assert again["State"]["StartedAt"] != started["StartedAt"]
    assert [n["Name"] for n in api.networks(label)] == [name]
    [attached] = api.network(name)["Containers"]
    assert attached == info["Id"]
    api.disconnect(name, name)
    assert api.network(name)["Containers"] == {} and api.inspect(name)["State"]["Running"] is True
    api.disconnect(name, name)  # not attached any more: fine
    assert [v["Name"] for v in api.volumes(label)] == [name]
    api.remove(name, volumes=True)
    assert api.containers(label) == []
    api.remove(name)  # already gone: fine
    api.remove_network(name)
    api.remove_volume(name)
    assert api.networks(label) == [] and api.volumes(label) == []
    assert api.calls > 10


def test_errors_name_the_request():
    api = api_mod.DockerAPI()
    with pytest.raises(api_mod.DockerError, match="no-such-container") as err:
        api.inspect(f"no-such-container-{secrets.token_hex(3)}")
    assert err.value.status == 404


def test_socket_path(monkeypatch, tmp_path):
    assert api_mod.socket_path("unix:///run/x.sock") == "/run/x.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/y.sock")
    assert api_mod.socket_path() == "/run/y.sock"
    monkeypatch.delenv("DOCKER_HOST")
    assert api_mod.socket_path() == "/var/run/docker.sock"
    with pytest.raises(api_mod.DockerError, match="only unix://"):
        api_mod.socket_path("tcp://127.0.0.1:2375")
    with pytest.raises(api_mod.DockerError, match="Docker engine at"):
        api_mod.DockerAPI(f"unix://{tmp_path}/none.sock").version()
