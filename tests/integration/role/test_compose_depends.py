"""`docker compose up --wait` on the rendered file: every service_healthy dependency has a healthcheck.

Compose refuses to start a service that waits for the health of one without a healthcheck
("dependency failed to start: ... has no healthcheck configured"); `config` does not catch it.
"""

from tests.integration.role.test_render import compose_config, render


def test_health_gated_dependencies_have_a_healthcheck(tmp_path, venv_env):
    project_dir, _ = render(tmp_path, venv_env, "depends-test")
    services = compose_config(project_dir, venv_env)["services"]
    gated = 0
    # Only the pooler follows a restart of the database (the daemon's heal relies on it).
    restarts = {
        (n, d) for n, s in services.items() for d, how in (s.get("depends_on") or {}).items() if how.get("restart")
    }
    assert restarts == {("supavisor", "db")}
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            check = services[dep].get("healthcheck") or {}
            if how["condition"] == "service_healthy":
                gated += 1
                assert check.get("test") and not check.get("disable"), f"{name} waits for the health of {dep}"
            else:
                assert how["condition"] == "service_started", f"{name} -> {dep}: {how}"
    assert gated > 0
