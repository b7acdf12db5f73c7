"""CI's promise: a green run ran every test. Under .ci/run a missing PostgreSQL or chromium fails the run
instead of quietly skipping half the suite; on a developer's machine it skips with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import unavailable

ROOT = Path(__file__).resolve().parent.parent


def test_a_missing_real_part_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEEN_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is not reachable"):
        unavailable("PostgreSQL is not reachable at postgresql://nowhere")


def test_a_missing_real_part_skips_on_a_developers_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEEN_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        unavailable("Debian's chromium is not installed")


def test_ci_asks_for_every_test_and_the_full_fault_loops() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "SEEN_REQUIRE_ALL=1" in ci
    assert "SEEN_FAULT_SIZE=\"${SEEN_FAULT_SIZE:-full}\"" in ci
    assert ci.rstrip().endswith("exec ./test")
