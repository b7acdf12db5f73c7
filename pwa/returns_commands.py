"""`seen export ssd DIR`, `seen export 903 DIR --year YYYY`, `seen export annex-a FILE`: the statutory returns
(storage/returns/), made by a manager or administrator named with --by."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pwa.cli import register


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("which", choices=["ssd", "903", "annex-a"],
                        help="ssd: the Standard Safeguarding Dataset tables; 903: the SSDA903 return; "
                             "annex-a: Ofsted's Annex A lists 6, 7 and 8")
    parser.add_argument("target", help="a folder, made if new (ssd, 903); for annex-a a file name whose lists are "
                                       "written beside it as NAME-list6.csv, NAME-list7.csv, NAME-list8.csv")
    parser.add_argument("--year", type=int, default=None,
                        help="903: the collection year, by the year it ends (2027 is April 2026 to March 2027)")
    parser.add_argument("--by", required=True, help="the manager or administrator making the export")


@register("export", "export a statutory return (SSD, SSDA903, Annex A) to new files only you can read",
          _configure_export)
def cmd_export(args: argparse.Namespace) -> int:
    from storage.bootstrap import open_server_store
    from storage.returns import ExportRefused, export

    try:
        print(export(open_server_store(), args.which, by=args.by, target=Path(args.target), year=args.year))
    except ExportRefused as e:
        print(e, file=sys.stderr)
        return 2
    return 0
