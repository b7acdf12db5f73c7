"""Statutory returns from what workers record: the Standard Safeguarding Dataset (ssd.py), the SSDA903 return
(ssda903.py) and Ofsted's Annex A lists (annex_a.py), and the per-record rules that would fail them (rules.py).

`export(store, "ssd" | "903" | "annex-a", by=username, target=...)` is the one way out: it checks who asks,
reads the caseload once, writes new owner-only files and audits the export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.returns import annex_a, ssd, ssda903
from storage.returns.common import (
    ExportRefused,
    Table,
    audit_export,
    children_in_scope,
    exporter,
    load_caseload,
    write_tables,
)
from storage.store import Store

__all__ = ["RETURNS", "ExportRefused", "Exported", "export"]

RETURNS = ("ssd", "903", "annex-a")


@dataclass(frozen=True)
class Exported:
    which: str
    children: int
    files: list[Path]

    def __str__(self) -> str:
        names = ", ".join(str(path) for path in self.files)
        return (f"Exported the {self.which} return for {self.children} children: {names}. These files hold "
                "children's details in the clear: keep them where only those who need them can read them.")


def export(store: Store, which: str, *, by: str, target: Path, year: int | None = None) -> Exported:
    """Writes one return (`RETURNS`) to `target` (a folder; for Annex A a file name whose lists are written
    beside it as NAME-list6.csv...), for the children `by` may export."""
    if which not in RETURNS:
        raise ExportRefused(f"There is no return called {which}: choose one of {', '.join(RETURNS)}.")
    if which == "903" and year is None:
        raise ExportRefused("The SSDA903 return is for one collection year: give it with --year (2027 is 2026-27).")
    with store.session() as session:
        worker = exporter(session, by)
        children = children_in_scope(session, worker)
        caseload = load_caseload(store, session, children)
        tables: list[Table]
        directory, prefix = target, ""
        if which == "ssd":
            tables = ssd.tables(caseload)
        elif which == "903":
            tables = ssda903.tables(caseload, year or 0)
        else:
            tables = annex_a.tables(caseload)
            directory, prefix = target.parent, target.stem + "-"
        files = write_tables(directory, tables, prefix=prefix)
        audit_export(session, worker, which, len(caseload.children))
    return Exported(which, len(caseload.children), files)
