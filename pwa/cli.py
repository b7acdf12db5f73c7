"""The `seen` command: run the app, fill a demo caseload, import, see what is due, check the audit chain."""

from __future__ import annotations

import argparse
import base64
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path


def _server_store():  # noqa: ANN202
    from storage.bootstrap import open_server_store

    return open_server_store()


def cmd_run(args: argparse.Namespace) -> int:
    # NiceGUI keeps each browser's session in files under .nicegui in the working directory unless told
    # otherwise (or given NICEGUI_REDIS_URL): set before NiceGUI is imported, they live with Seen's data.
    from storage.config import settings

    os.environ.setdefault("NICEGUI_STORAGE_PATH", str(Path(settings().data_dir).resolve() / "sessions"))
    from pwa.app import run

    run(host=args.host, port=args.port, demo=args.demo)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from storage.demo import DEMO_PASSWORD, create_demo, is_empty

    store = _server_store()
    if not is_empty(store):
        print("The store already holds children; the demo caseload is only added to an empty store.")
        return 1
    counts = create_demo(store)
    print("Demo caseload added: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print(f"Sign in as ben, chloe, erin or femi (workers), amara or dev (managers), admin; password {DEMO_PASSWORD}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from storage.importer import ImportRejected, import_csv

    store = _server_store()
    try:
        summary = import_csv(store, args.file)
    except ImportRejected as e:
        print(e, file=sys.stderr)
        return 2
    except FileNotFoundError:
        print(f"There is no file at {args.file}.", file=sys.stderr)
        return 2
    print(summary)
    return 0


def cmd_due(argv: list[str]) -> int:
    from storage.timescales.due import due_command

    def load() -> list:
        from storage.cases import all_open_cases

        store = _server_store()
        with store.session() as session:
            return all_open_cases(session)

    return due_command(argv, load)


def cmd_audit(args: argparse.Namespace) -> int:
    """Checks the chain with the store's key: the server key (SEEN_SERVER_KEY, or the all-in-one's key file),
    or on a personal node its passphrase. Without the key the chain cannot be checked, and nothing is made."""
    from storage import audit, sealing
    from storage.bootstrap import key_file, open_personal_store, open_server_store
    from storage.config import settings

    anchor = None
    if args.head:
        seq, _, prefix = args.head.partition(":")
        if not seq.isdigit() or len(prefix) < 8 or any(c not in "0123456789abcdefABCDEF" for c in prefix):
            print("--head takes the newest event as an earlier `seen audit verify` printed it: NUMBER:HASH "
                  "(at least 8 hex digits).", file=sys.stderr)
            return 2
        anchor = (int(seq), prefix)
    config = settings()
    try:
        if config.node_mode == "personal":
            store = open_personal_store(config)
            store.unlock(getpass.getpass("Passphrase: "))
        else:
            if not config.server_key and not key_file(config).exists():
                print("Checking the audit chain needs the store's key: set SEEN_SERVER_KEY (the key the servers "
                      "run with). Nothing was checked.", file=sys.stderr)
                return 2
            store = open_server_store(config)
    except (sealing.SealError, sealing.WrongPassphrase, sealing.TooSoon) as e:
        print(f"{e} The audit chain is keyed by the store's key, so it cannot be checked without it.",
              file=sys.stderr)
        return 2
    with store.session() as session:
        verdict = audit.verify(session, anchor=anchor)
    print(verdict)
    return 0 if verdict.ok else 1


def cmd_passphrase(args: argparse.Namespace) -> int:
    from storage import sealing
    from storage.bootstrap import open_personal_store

    store = open_personal_store()
    if store.key_mode() != "passphrase":
        print("This store is not a personal node; its key is wrapped by the server key.", file=sys.stderr)
        return 2
    old = getpass.getpass("Current passphrase: ")
    new = getpass.getpass("New passphrase: ")
    if new != getpass.getpass("New passphrase again: "):
        print("The new passphrases do not match; nothing was changed.", file=sys.stderr)
        return 2
    try:
        store.change_passphrase(old, new)
    except (sealing.WrongPassphrase, sealing.TooSoon, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    print("Passphrase changed. Every record is still readable with the new one.")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    print(base64.b64encode(os.urandom(32)).decode())
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from storage.config import settings
    from storage.db import BackupRefused, backup_sqlite

    target = Path(args.file)
    try:
        size = backup_sqlite(settings().url, target)
    except BackupRefused as e:
        print(e, file=sys.stderr)
        return 2
    print(f"Backed up to {target} ({size / 2**20:.1f} MB), checked. The records in it are sealed: keep the "
          "server key (or a node's passphrase) safe and apart from the copy. Without it the copy cannot be "
          "read; with it, anyone can.")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from storage import sealing
    from storage.bootstrap import KeyRotationRefused, rotate_server_key

    try:
        print(rotate_server_key(os.environ.get("SEEN_NEW_SERVER_KEY", "")))
    except (KeyRotationRefused, sealing.SealError, ValueError) as e:
        print(e, file=sys.stderr)
        return 2
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None, Callable[..., int]]] = {}


def register(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None] | None = None
             ) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Lets other modules add a subcommand (sync server, push) without editing this parser."""

    def decorator(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help_text, configure, func)
        return func

    return decorator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seen", description="Seen: statutory visits and direct work, on a phone.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start the all-in-one server (app, sync API, scheduler)")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    run.add_argument("--demo", action="store_true", help="add the demo caseload if the store is empty")
    run.set_defaults(func=cmd_run)
    sub.add_parser("demo", help="fill an empty store with the demo caseload").set_defaults(func=cmd_demo)
    imp = sub.add_parser("import", help="import a caseload CSV from a case management system")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    sub.add_parser("due", help="what is due, when and why (seen due --help)", add_help=False)
    aud = sub.add_parser("audit", help="check the audit trail")
    aud.add_argument("action", choices=["verify"])
    aud.add_argument("--head", default="", help="NUMBER:HASH of the newest event an earlier verify printed: "
                     "also proves the chain's end was not cut off before it")
    aud.set_defaults(func=cmd_audit)
    sub.add_parser("passphrase", help="change a personal node's passphrase").set_defaults(func=cmd_passphrase)
    sub.add_parser("keygen", help="print a new random server key for SEEN_SERVER_KEY").set_defaults(func=cmd_keygen)
    backup = sub.add_parser("backup", help="copy a SQLite store to a new file while Seen runs, and check it")
    backup.add_argument("file", help="the new file to write (never overwritten)")
    backup.set_defaults(func=cmd_backup)
    sub.add_parser("rotate-key", help="rewrap the store's data key under a new server key (SEEN_NEW_SERVER_KEY)"
                   ).set_defaults(func=cmd_rotate_key)
    # The subcommands that live beside their subsystem register themselves, on importing, on the module
    # `pwa.cli` (which is not this one when run as `python -m pwa.cli`).
    import pwa.push_commands  # noqa: F401
    import pwa.returns_commands  # noqa: F401
    import pwa.sync.commands  # noqa: F401
    from pwa.cli import COMMANDS as registry

    for name, (help_text, configure, func) in registry.items():
        extra = sub.add_parser(name, help=help_text)
        if configure:
            configure(extra)
        extra.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "due":
        return cmd_due(argv[1:])
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
