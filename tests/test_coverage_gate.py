"""scripts/coverage-critical, the gate at the end of scripts/test: on a small checkout of its own (a
copy of the script, one critical module, one other file) with data from a real coverage.py run."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

MODULE = textwrap.dedent(
    """\
    def covered(n):
        total = 0
        for i in range(n):
            total += i
        return total


    def branch(flag):
        if flag:
            return "yes"
        return "no"
    """
)


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "coverage-critical", tmp_path / "scripts")
    (tmp_path / "plugins" / "modules").mkdir(parents=True)
    (tmp_path / "plugins" / "modules" / "thing.py").write_text(MODULE)
    (tmp_path / "plugins" / "other.py").write_text("VALUE = 1\n")
    (tmp_path / ".coveragerc").write_text("[run]\nsource = plugins\ndata_file = .coverage-data/coverage\n")
    return tmp_path


def measure(checkout, code):
    """Run code under coverage.py in the checkout, outside any measuring this test run does itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "_ANSIBLE_COVERAGE"))}
    (checkout / "run.py").write_text(f"import sys\nsys.path.insert(0, 'plugins')\n{code}\n")
    subprocess.run([sys.executable, "-m", "coverage", "run", "run.py"], cwd=checkout, env=env, check=True)
    return env


def gate(checkout, env, *args):
    return subprocess.run(
        [sys.executable, str(checkout / "scripts" / "coverage-critical"), *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_critical_module_below_95_fails_the_gate_and_is_named(checkout):
    env = measure(checkout, "import other\nfrom modules import thing\nthing.covered(3)\nthing.branch(True)")
    gated = gate(checkout, env, "--gate")
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "BELOW  plugins/modules/thing.py" in gated.stdout
    assert "coverage targets missed: 1 (plugins/modules/thing.py)" in gated.stdout
    # Without --gate the same table is printed and the exit is 0.
    printed = gate(checkout, env)
    assert printed.returncode == 0 and "BELOW  plugins/modules/thing.py" in printed.stdout


def test_every_target_met_passes_and_a_module_no_test_ran_counts_0(checkout):
    env = measure(
        checkout, "import other\nfrom modules import thing\nthing.covered(3)\nthing.branch(True)\nthing.branch(False)"
    )
    passed = gate(checkout, env, "--gate")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "100.0 %  ok     plugins/modules/thing.py" in passed.stdout and "overall: 100.0 %" in passed.stdout
    (checkout / "plugins" / "modules" / "never.py").write_text("def f():\n    return 1\n")
    missed = gate(checkout, env, "--gate")
    assert missed.returncode == 1 and "0.0 %  BELOW  plugins/modules/never.py" in missed.stdout


def test_no_coverage_data_fails_the_gate_with_a_message(checkout):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "_ANSIBLE_COVERAGE"))}
    result = gate(checkout, env, "--gate")
    assert result.returncode == 1 and "coverage: no data to judge" in result.stdout + result.stderr
