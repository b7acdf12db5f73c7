"""Runs the DfE's own validators on an export; run by the validators' own virtualenv (.venv-dfe), never Seen's.

    .venv-dfe/bin/python tests/dfe_validate.py 903 DIR YEAR   the SSDA903 files in DIR, for the year ending YEAR
    .venv-dfe/bin/python tests/dfe_validate.py cin DIR YEAR   the SSD's CP plans and reviews in DIR, as the CIN
                                                              census's ChildProtectionPlans and Reviews tables

Prints one JSON list of {"code", "table", "child"} for every error found. The validators pin old pandas and
numpy, which is why Seen never imports this file.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import inspect
import io
import json
import logging
import re
import sys
from pathlib import Path

LOCAL_AUTHORITY = "E09000027"  # any English authority: the rules that read it compare it with placements' LAs


def run_903(directory: Path, year: int) -> dict[str, list]:
    from lac_validator.datastore import create_datastore
    from lac_validator.ingress import read_from_text
    from lac_validator.rules.ruleset_utils import get_year_ruleset
    from lac_validator.utils import process_uploaded_files

    files = process_uploaded_files({"This year": [str(path) for path in sorted(directory.glob("*.csv"))]})
    tables, extras = read_from_text(files)
    store = create_datastore(tables, {"collectionYear": str(year), "localAuthority": LOCAL_AUTHORITY, **extras})
    found: list[dict[str, str]] = []
    failed: list[str] = []
    # LacValidator runs every rule on one shallow copy, and some rules change the frames they read, so a later
    # rule can see what an earlier one wrote (575 and 577 then fire on open episodes): each rule gets its own copy.
    for code, rule in get_year_ruleset(str(year)).items():
        try:
            result = rule.func(copy.deepcopy(store))
        except Exception:  # the validator's own rule crashed (a column it expects that no file has)
            failed.append(str(code))
            continue
        for table, rows in result.items():
            frame = store[table]
            for row in rows:
                child = frame.loc[row, "CHILD"] if row in frame.index and "CHILD" in frame.columns else ""
                found.append({"code": str(code), "table": table, "child": str(child)})
    return {"errors": found, "failed_to_run": failed}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run_cin(directory: Path, year: int) -> dict[str, list]:
    import pandas as pd
    from cin_validator import cin_validator
    from cin_validator.ingress import XMLtoCSV
    from cin_validator.rule_engine import CINTable
    from cin_validator.rules.ruleset_utils import get_year_ruleset

    plans = _rows(directory / "ssd_cp_plans.csv")
    reviews = _rows(directory / "ssd_cp_reviews.csv")
    date = lambda s: pd.to_datetime(s, format="%Y-%m-%d", errors="coerce") if s else pd.NaT  # noqa: E731
    cpp = pd.DataFrame([{"LAchildID": p["cppl_person_id"], "CINdetailsID": p["cppl_person_id"],
                         "CPPID": p["cppl_cp_plan_id"], "CPPstartDate": date(p["cppl_cp_plan_start_date"]),
                         "CPPendDate": date(p["cppl_cp_plan_end_date"]), "InitialCategoryOfAbuse": "NEG",
                         "LatestCategoryOfAbuse": "NEG", "NumberOfPreviousCPP": "0"} for p in plans],
                       columns=["LAchildID", "CINdetailsID", "CPPID", "CPPstartDate", "CPPendDate",
                                "InitialCategoryOfAbuse", "LatestCategoryOfAbuse", "NumberOfPreviousCPP"])
    rev = pd.DataFrame([{"LAchildID": r["cppr_person_id"], "CINdetailsID": r["cppr_person_id"],
                         "CPPID": r["cppr_cp_plan_id"], "CPPreviewDate": date(r["cppr_cp_review_date"])}
                        for r in reviews if r["cppr_cp_review_date"]],
                       columns=["LAchildID", "CINdetailsID", "CPPID", "CPPreviewDate"])
    header = pd.DataFrame([{"Collection": "CIN", "Year": str(year), "ReferenceDate": pd.Timestamp(year, 3, 31),
                            "SourceLevel": "L", "LEA": "201", "SoftwareCode": "Seen", "Release": "1",
                            "SerialNo": "1", "DateTime": pd.Timestamp(year, 3, 31)}])
    registry = get_year_ruleset(str(year))
    # Only the error rules that read nothing but CP plans, reviews and the header: the others need tables (CIN
    # details, section 47 enquiries, child identifiers) that this check does not build.
    codes = [str(code) for code, rule in registry.items() if rule.rule_type.name == "ERROR"
             and set(re.findall(r"data_container\[(\w+)\]", inspect.getsource(rule.func)))
             <= {"ChildProtectionPlans", "Reviews", "Header"}]
    given = {"Header": header, "ChildProtectionPlans": cpp, "Reviews": rev}
    data = {table.name: given.get(table.name, getattr(XMLtoCSV, table.name).copy()) for table in CINTable}
    validator = cin_validator.CinValidator(data, registry, selected_rules=codes)
    issues = validator.full_issue_df
    return {"errors": [{"code": str(row["rule_code"]), "table": str(row.get("tables_affected", "")),
                        "child": str(row.get("child_id", ""))} for _, row in issues.iterrows()],
            "failed_to_run": []}


def main() -> int:
    which, directory, year = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    logging.disable(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()):  # the validators print as they go
        found = run_903(directory, year) if which == "903" else run_cin(directory, year)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
