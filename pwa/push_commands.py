"""`seen vapid` (the server's push public key) and `seen notify` (what would be sent now, or send it)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from pwa.cli import register
from storage.timescales.calendar import LONDON


def _store():  # noqa: ANN202
    from storage.bootstrap import open_server_store

    return open_server_store()


@register("vapid", "print the server's VAPID public key (the browser's applicationServerKey)")
def cmd_vapid(args: argparse.Namespace) -> int:
    from storage import push_delivery

    print(push_delivery.public_key_b64url(push_delivery.vapid_private_key(_store())))
    return 0


def _configure_notify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would be sent now, to whom and why; send and record nothing")
    parser.add_argument("--at", metavar="WHEN",
                        help="pretend it is this moment, England time (e.g. 2026-11-23T09:00)")


@register("notify", "send the push alerts due now (--dry-run: only say what would be sent, to whom and why)",
          _configure_notify)
def cmd_notify(args: argparse.Namespace) -> int:
    from storage import notify
    from storage.models import utcnow

    now = utcnow()
    if args.at:
        try:
            moment = datetime.fromisoformat(args.at)
        except ValueError:
            print(f"--at {args.at!r} is not a date and time: write it like 2026-11-23T09:00.", file=sys.stderr)
            return 2
        now = moment if moment.tzinfo else moment.replace(tzinfo=LONDON)
    store = _store()
    if args.dry_run:
        lines = notify.dry_run(store, now)
        for line in lines:
            print(line)
        if not lines:
            print("Nothing new to send now: every alert that applies has been sent already.")
        return 0
    from pwa.push import run_once

    report = run_once(store, now)
    if not report.ran:
        print("Another Seen server is running the scheduler right now; nothing was sent from here.")
        return 1
    print(f"{report.decided} new alerts; {report.delivered} messages delivered, {report.gone} subscriptions gone, "
          f"{report.retry} to retry, {report.failed} refused.")
    return 0
