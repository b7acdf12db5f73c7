"""The statutory returns of the demo caseload (frozen day): the DfE's validators find no errors, the files carry the
SSD's own names and strict yes/no values, and only a manager or administrator exports, never over a file."""

from __future__ import annotations

import csv
import shutil
import stat
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import AuditEvent, Child, Worker
from storage.returns import ExportRefused, export
from storage.store import Store
from tests.returns_support import (
    POSTCODE_RULES,
    VALIDATOR_FALSE_POSITIVES,
    YEAR,
    codes,
    dfe,
    with_real_postcodes,
)
from tests.test_cli import DATA, seen

# Rules of csc-validator-be-903 0.1.17 that crash on any upload without the tables they read (231 reads UASC
# columns, 233 a column no file has): they never run, on anyone's data.
VALIDATOR_CRASHES = {"231", "233"}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_demo_ssda903_return_passes_the_dfes_validator(module_demo_store: Store, tmp_path: Path) -> None:
    made = export(module_demo_store, "903", by="admin", target=tmp_path / "903", year=YEAR)
    assert made.children == 42
    assert {p.name for p in made.files} == {"header.csv", "episodes.csv", "reviews.csv", "missing.csv",
                                            "sw_episodes.csv"}
    assert len(rows(tmp_path / "903" / "header.csv")) == 16  # the sixteen children in care
    found = dfe("903", tmp_path / "903")
    assert set(found["failed_to_run"]) <= VALIDATOR_CRASHES
    assert codes(found, ignore=POSTCODE_RULES | VALIDATOR_FALSE_POSITIVES) == set()
    # With real postcodes in place of the demo's fictional ones, not even the postcode rules fire.
    with_real_postcodes(tmp_path / "903")
    assert codes(dfe("903", tmp_path / "903"), ignore=VALIDATOR_FALSE_POSITIVES) == set()


def test_the_demo_cp_plans_and_reviews_pass_the_cin_census_rules(module_demo_store: Store, tmp_path: Path) -> None:
    export(module_demo_store, "ssd", by="admin", target=tmp_path / "ssd")
    assert rows(tmp_path / "ssd" / "ssd_cp_reviews.csv")
    assert codes(dfe("cin", tmp_path / "ssd")) == set()


def test_the_ssd_export_uses_the_datasets_names_strict_yes_no_and_owner_only_files(module_demo_store: Store,
                                                                                   tmp_path: Path) -> None:
    made = export(module_demo_store, "ssd", by="admin", target=tmp_path / "ssd")
    names = {p.name for p in made.files}
    assert {f"ssd_{t}.csv" for t in ("cla_visits", "cin_visits", "cp_visits", "cla_reviews", "cp_reviews",
                                     "cla_placement", "missing", "person", "cla_episodes")} <= names
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made.files)
    # Column names as data-to-insight/ssd-data-model's data/objects/ssd_cla_visits.yml has them.
    with (tmp_path / "ssd" / "ssd_cla_visits.csv").open() as f:
        assert next(csv.reader(f)) == ["clav_cla_visit_id", "clav_cla_id", "clav_person_id", "clav_cla_visit_date",
                                       "clav_cla_visit_seen", "clav_cla_visit_seen_alone"]
    visits = [(r["cinv_cin_visit_seen"], r["cinv_cin_visit_seen_alone"], r["cinv_cin_visit_bedroom"])
              for r in rows(tmp_path / "ssd" / "ssd_cin_visits.csv")]
    visits += [(r["cppv_cp_visit_seen"], r["cppv_cp_visit_seen_alone"], r["cppv_cp_visit_bedroom"])
               for r in rows(tmp_path / "ssd" / "ssd_cp_visits.csv")]
    visits += [(r["clav_cla_visit_seen"], r["clav_cla_visit_seen_alone"], "N")
               for r in rows(tmp_path / "ssd" / "ssd_cla_visits.csv")]
    assert visits and all(value in ("Y", "N") for visit in visits for value in visit)
    not_seen = [v for v in visits if v[0] == "N"]
    assert not_seen and all(alone == "N" for _, alone, _ in not_seen)  # not seen is "not seen alone", never blank
    reviews = rows(tmp_path / "ssd" / "ssd_cla_reviews.csv")
    held = [r for r in reviews if r["clar_cla_review_date"]]
    assert held and all(r["clar_cla_review_participation"] in {f"PN{n}" for n in range(8)} for r in held)
    in_care = {e["clae_person_id"] for e in rows(tmp_path / "ssd" / "ssd_cla_episodes.csv")}
    placements = [p for p in rows(tmp_path / "ssd" / "ssd_cla_placement.csv") if p["clap_person_id"] in in_care]
    assert len(in_care) == 16 and placements and all(p["clap_cla_id"] for p in placements)  # in a period of care


def test_only_a_manager_or_admin_exports_never_over_a_file_and_every_export_is_audited(module_demo_store: Store,
                                                                                      tmp_path: Path) -> None:
    store = module_demo_store
    with pytest.raises(ExportRefused, match="team manager or an administrator"):
        export(store, "ssd", by="ben", target=tmp_path / "ben")
    assert not (tmp_path / "ben").exists()
    made = export(store, "annex-a", by="amara", target=tmp_path / "annex_a.csv")
    with store.session() as session:
        amara = session.exec(select(Worker).where(Worker.username == "amara")).one()
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        in_team = len(session.exec(select(Child).where(Child.team_id == amara.team_id)).all())
        events = session.exec(select(AuditEvent).where(AuditEvent.kind.in_(["export", "return"]))).all()  # type: ignore[attr-defined]
    assert made.children == in_team  # a manager's export is their teams' children
    assert [p.name for p in made.files] == ["annex_a-list6.csv", "annex_a-list7.csv", "annex_a-list8.csv"]
    assert len(rows(tmp_path / "annex_a-list8.csv")) == 16 and not rows(tmp_path / "annex_a-list7.csv")
    assert any(e.action == "denied" and e.worker_id == ben.id for e in events)
    assert any(e.action == "export" and e.worker_id == amara.id and e.detail == f"annex-a: {in_team} children"
               for e in events)
    before = (tmp_path / "annex_a-list6.csv").read_bytes()
    with pytest.raises(ExportRefused, match="never writes over a file"):
        export(store, "annex-a", by="amara", target=tmp_path / "annex_a.csv")
    assert (tmp_path / "annex_a-list6.csv").read_bytes() == before


def demo_data_dir(folder: Path, demo_template: Path) -> Path:
    """A data directory holding what `seen demo` makes (tests/test_cli.py runs that command itself)."""
    folder.mkdir()
    shutil.copy(demo_template, folder / "seen.db")
    return folder


def test_the_commands_export_the_demo_and_an_imported_caseload(tmp_path: Path, demo_template: Path) -> None:
    demo_data_dir(tmp_path / "demo", demo_template)
    for args in (["ssd", str(tmp_path / "ssd")], ["903", str(tmp_path / "903"), "--year", str(YEAR)],
                 ["annex-a", str(tmp_path / "annex.csv")]):
        done = seen(tmp_path / "demo", "export", *args, "--by", "admin")
        assert done.returncode == 0, done.stderr
        assert "for 42 children" in done.stdout
    again = seen(tmp_path / "demo", "export", "ssd", str(tmp_path / "ssd"), "--by", "admin")
    assert again.returncode == 2 and "never writes over" in again.stderr
    refused = seen(tmp_path / "demo", "export", "ssd", str(tmp_path / "ssd2"), "--by", "ben")
    assert refused.returncode == 2 and "team manager or an administrator" in refused.stderr
    assert seen(tmp_path / "demo", "export", "903", str(tmp_path / "903b"), "--by", "admin").returncode == 2

    # A caseload imported from a case management system exports too: its period of care comes from the
    # "looked after since" date.
    imported = demo_data_dir(tmp_path / "imported", demo_template)  # the workers the file names
    assert seen(imported, "import", str(DATA / "caseload_good.csv")).returncode == 0
    done = seen(imported, "export", "903", str(tmp_path / "i903"), "--year", str(YEAR), "--by", "admin")
    assert done.returncode == 0, done.stderr
    episodes = [r for r in rows(tmp_path / "i903" / "episodes.csv") if r["CHILD"] == "LCS0001"]
    assert [(e["DECOM"], e["RNE"], e["LS"], e["PLACE"]) for e in episodes] == [("01/06/2025", "S", "C2", "U4")]
    assert seen(imported, "export", "ssd", str(tmp_path / "issd"), "--by", "admin").returncode == 0
