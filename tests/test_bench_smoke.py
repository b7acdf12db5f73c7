"""The bench harness runs end to end at the tiny size, and the figures it writes have the agreed shape."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench import Figure, benchmark

ROOT = Path(__file__).resolve().parent.parent


def test_python_m_bench_tiny_writes_json(tmp_path):
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Real seen / seen server / NiceGUI processes start in the sync and browser benchmarks: on a busy
        # 2-core machine that is most of a minute even at the tiny size.
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    names = [f["name"] for f in figures]
    assert "due_100k" in names
    for name in ("sync_push", "sync_pull", "sync_load_p95", "sync_load_errors", "page_caseload", "memory_clients"):
        assert name in names
    assert len(result.stdout.splitlines()) == len(figures)  # one line per figure
    for f in figures:
        assert isinstance(f["name"], str) and isinstance(f["value"], float) and isinstance(f["unit"], str)
        assert set(f) <= {"name", "value", "unit", "baseline", "ratio", "target", "met"}
    due = next(f for f in figures if f["name"] == "due_100k")
    assert (
        due["unit"] == "s"
        and due["baseline"] > 0
        and due["ratio"] == pytest.approx(due["value"] / due["baseline"])
    )
    assert "target" not in due  # tiny runs are not held to the full-size targets


def test_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEEN_BENCH_SIZE", "tiny")
    assert bench.bench_size() == "tiny"
    monkeypatch.setenv("SEEN_BENCH_SIZE", "huge")
    with pytest.raises(ValueError):
        bench.bench_size()


def test_registering_a_benchmark(monkeypatch):
    monkeypatch.setattr(bench, "REGISTRY", {})
    monkeypatch.setattr(bench, "MODULES", ())

    @benchmark("example")
    def example(size: str) -> list[Figure]:
        return [Figure("example", 0.5, "s", target=1.0)]

    seen: list[Figure] = []
    figures = bench.run("tiny", report=seen.append)
    assert figures == seen == [Figure("example", 0.5, "s", target=1.0)]
    assert figures[0].met is True
    assert figures[0].to_json() == {"name": "example", "value": 0.5, "unit": "s", "target": 1.0, "met": True}
    assert "ok" in figures[0].line()


def test_a_missed_target_is_reported():
    late = Figure("slow", 3.0, "s", target=2.0)
    assert late.met is False and "MISSED" in late.line()
