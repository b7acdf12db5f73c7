"""The `seen` command as an engineer at a council runs it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import SERVER_KEY

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"


def seen(tmp_path: Path, *args: str, key: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_"))}
    env.update(SEEN_DATA_DIR=str(tmp_path), SEEN_SERVER_KEY=base64.b64encode(SERVER_KEY).decode())
    if not key:
        env.pop("SEEN_SERVER_KEY")
    env.pop("SEEN_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "pwa.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_demo_then_due_reads_the_store_and_import_refuses_a_bad_file(tmp_path: Path) -> None:
    made = seen(tmp_path, "demo")
    assert made.returncode == 0, made.stderr
    assert "42 children" in made.stdout
    assert seen(tmp_path, "demo").returncode == 1  # never added twice

    due = seen(tmp_path, "due", "--json")
    assert due.returncode == 0, due.stderr
    clocks = json.loads(due.stdout)
    assert {c["clock"] for c in clocks} >= {"cic_visit", "cic_review", "cp_visit", "cin_visit"}
    assert any(c["status"] == "overdue" for c in clocks)
    assert all(c["rule"] and c["source"] for c in clocks)

    table = seen(tmp_path, "due")
    assert table.returncode == 0 and "overdue" in table.stdout.lower()

    bad = seen(tmp_path, "import", str(DATA / "caseload_bad.csv"))
    assert bad.returncode == 2
    assert "line 4, column category" in bad.stderr

    verify = seen(tmp_path, "audit", "verify")
    assert verify.returncode == 0 and "intact" in verify.stdout


def test_a_server_without_its_key_refuses_to_start_and_the_all_in_one_says_where_its_key_is(tmp_path: Path) -> None:
    # `seen server` holds an authority's records: its key must come from the environment, never from disk.
    refused = seen(tmp_path / "server", "server", "--port", "1", key=False)
    assert refused.returncode == 2
    assert "SEEN_SERVER_KEY" in refused.stderr and "seen keygen" in refused.stderr
    assert not (tmp_path / "server").exists() or not any((tmp_path / "server").iterdir())  # nothing made
    # The all-in-one may keep a key beside its data (a demo, a trial), and says so every time it starts.
    made = seen(tmp_path / "demo", "demo", key=False)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "demo" / "server.key").exists()
    assert "kept beside the data" in made.stderr and "SEEN_SERVER_KEY" in made.stderr
    assert seen(tmp_path / "demo", "due", key=False).returncode == 0  # the same key opens it again
