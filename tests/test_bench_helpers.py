"""The bench's pure helpers (bench/benchlib.py): statistics, ratios, the report and the chart."""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import signal

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "benchlib.py"
_spec = importlib.util.spec_from_file_location("benchlib", _PATH)
benchlib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchlib)


def test_percentile_interpolates_between_ranks():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert benchlib.percentile(values, 0) == 1.0
    assert benchlib.percentile(values, 50) == 3.0
    assert benchlib.percentile(values, 100) == 5.0
    assert benchlib.percentile(values, 25) == 2.0
    assert benchlib.percentile([1.0, 2.0], 99) == pytest.approx(1.99)


def test_percentile_refuses_no_values_and_bad_q():
    with pytest.raises(ValueError):
        benchlib.percentile([], 50)
    with pytest.raises(ValueError):
        benchlib.percentile([1.0], 101)


def test_ratio_is_none_without_both_figures():
    assert benchlib.ratio(3.0, 2.0) == 1.5
    assert benchlib.ratio(None, 2.0) is None
    assert benchlib.ratio(3.0, 0) is None


def test_markdown_table_aligns_numbers_right_and_checks_widths():
    table = benchlib.markdown_table(["step", "s"], [["create", 1.234], ["pause", None]])
    assert table.splitlines() == ["| step | s |", "|---|---:|", "| create | 1.23 |", "| pause | - |"]
    with pytest.raises(ValueError):
        benchlib.markdown_table(["a", "b"], [[1]])


def test_lifecycle_rows_take_the_median_over_rounds():
    rounds = [
        {"role": {"create": 10.0, "pause": 2.0}, "compose": {"create": 5.0, "pause": 1.0}},
        {"role": {"create": 12.0, "pause": 4.0}, "compose": {"create": 6.0, "pause": 1.0}},
        {"role": {"create": 30.0, "pause": 3.0}, "compose": {"create": 7.0, "pause": 1.0}},
    ]
    rows = {r[0]: r for r in benchlib.lifecycle_rows(rounds)}
    assert rows["create"][2:] == [12.0, 6.0, 2.0]
    assert rows["pause"][4] == 3.0
    assert rows["delete"][2:] == [None, None, None]


def test_a_report_of_several_rounds_shows_each_round_under_the_medians():
    rounds = [
        {"role": {"create": 10.0}, "compose": {"create": 20.0}},
        {"role": {"create": 12.0}, "compose": {"create": 20.0}},
        {"role": {"create": 30.0}, "compose": {"create": 20.0}},
    ]
    report = benchlib.render_report({"lifecycle": rounds})
    assert "| create | up -d --wait | 12.00 | 20.00 | 0.60 |" in report
    assert "| 3 | create | 30.00 | 20.00 | 1.50 |" in report


def test_report_and_chart_from_a_results_dict(tmp_path):
    results = {
        "mode": "full",
        "machine": {"nproc": "2"},
        "lifecycle": [{"role": {"create": 10.0}, "compose": {"create": 8.0}}],
        "create_vs_compose_ratio": 1.25,
        "scale": [{"n": 1, "total_s": 30.0, "per_project_s": 30.0, "healthy": 1, "get_p50_ms": 3.0}],
        "poll": [
            {"projects": 1, "containers": 13, "wall_ms": 4.0, "cpu_ms": 2.0, "calls_per_cycle": 1.0,
             "usage_wall_ms": 9.0, "usage_cpu_ms": 3.0, "usage_calls_per_cycle": 2.0, "usage_containers_read": 13}
        ],
    }  # fmt: skip
    report = benchlib.render_report(results)
    assert "| 1 | 13 | 9.00 | 3.00 | 2.00 |" in report
    assert "| create | up -d --wait | 10.00 | 8.00 | 1.25 |" in report
    assert "| 1 | 30.00 | 30.00 |" in report
    assert report.rstrip().endswith("create_vs_compose_ratio=1.25")
    png = tmp_path / "chart.png"
    benchlib.chart(results, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_quick_run_ends_with_the_ratio_line_after_cleanup(tmp_path, monkeypatch, capsys):
    """bench/run --quick must end with `create_vs_compose_ratio=X.XX`, after the cleanup's log lines."""
    monkeypatch.syspath_prepend(str(_PATH.parent))
    spec = importlib.util.spec_from_file_location("bench_main", _PATH.parent / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def run(self):
        self.results["lifecycle"] = [
            {"role": {"create": 36.0, "pause": 4.0}, "compose": {"create": 30.0, "pause": 2.0}}
        ]

    def cleanup(self):
        bench.log("cleanup says something")
        shutil.rmtree(self.work, ignore_errors=True)

    monkeypatch.setattr(bench.Bench, "run", run)
    monkeypatch.setattr(bench.Bench, "cleanup", cleanup)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert bench.main(["--quick", "--output", str(tmp_path)]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    lines = capsys.readouterr().out.splitlines()
    assert any("cleanup says something" in line for line in lines)
    assert lines[-6] == "create: playbook 36.00s, compose up -d --wait 30.00s, ratio 1.20"
    assert lines[-5] == "pause: playbook 4.00s, compose stop 2.00s, ratio 2.00"
    assert lines[-1] == "create_vs_compose_ratio=1.20"


def test_backup_step_helpers_rows_markers_lag_and_report(tmp_path):
    assert benchlib.rows_for_mb(1024) == 1024 * 1024 * 1024 // benchlib.BACKUP_ROW_BYTES
    chain = tmp_path / "chain"
    assert benchlib.highest_marker(chain) == -1  # no chain yet
    chain.mkdir()
    (chain / "000000010000000000000001").write_bytes(b"\0" + benchlib.lag_marker(3).encode() + b"\0")
    (chain / "000000010000000000000002.partial").write_bytes(
        b"x" + benchlib.lag_marker(7).encode() + benchlib.lag_marker(5).encode()
    )
    assert benchlib.highest_marker(chain) == 7
    figures = benchlib.lag_figures({0: 10.0, 1: 10.1, 2: 10.2}, {0: 10.05, 1: 10.5})
    assert figures["lag_rows"] == 3 and figures["lag_rows_missing"] == 1
    assert abs(figures["lag_max_s"] - 0.4) < 1e-9 and abs(figures["lag_p50_s"] - 0.225) < 1e-9
    assert benchlib.lag_figures({0: 1.0}, {})["lag_p50_s"] is None
    report = benchlib.render_report(
        {
            "backup": {
                "database_bytes": 1024**3, "rows": 10, "fill_s": 1.0, "backup_s": 30.0, "backup_bytes": 300,
                "pg_dump_s": 10.0, "pg_dump_bytes": 100, "time_ratio": 3.0, "size_ratio": 3.0, "restore_s": 40.0,
                "lag_rows": 600, "lag_rows_missing": 0, "lag_p50_s": 0.1, "lag_p95_s": 0.2, "lag_max_s": 0.3,
            }
        }
    )  # fmt: skip
    assert "a database of 1024 MiB" in report and "| pg_dump -Fc" in report and "p95 0.20 s" in report
