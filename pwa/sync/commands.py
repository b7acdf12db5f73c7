"""`seen server`, `seen enrol`, `seen device` and `seen sync`: running the sync server and managing devices.

    seen server [--host H] [--port P]        the sync API (and the due scheduler) alone, on SEEN_DATABASE_URL
    seen enrol USERNAME [--hours N]          a one-time enrolment code for a worker's device, with its QR code
    seen device list | revoke DEVICE_ID      the enrolled devices; revoking one makes it wipe itself
    seen sync join URL CODE [--name NAME]    (on a node) enrol this node with a server
    seen sync now | status                   (on a node) sync once, or say how sync stands
"""

from __future__ import annotations

import argparse
import gc
import getpass
import io
import os
import sys

from pwa.cli import register


def _server_store(*, standalone: bool = False):  # noqa: ANN202
    from storage.bootstrap import open_server_store

    return open_server_store(outbox=True, standalone=standalone)


def serve(host: str, port: int) -> None:
    """Runs the sync server in this process until it is stopped, with its apply processes (pwa/sync/processes.py)."""
    import uvicorn

    from pwa import state
    from pwa.sync import processes
    from pwa.sync.server import Forward, build_app
    from storage.config import settings

    store = _server_store(standalone=True)
    state.set_store(store)
    app = build_app()
    pool = processes.Pool(apply_processes(settings().sync_processes, store.engine.dialect.name))
    pool.start()  # before the scheduler's thread: the processes open the store (migrated already) themselves
    Forward.pool = pool if pool.count else None
    _start_scheduler(app)
    # What is alive now (modules, the app, the store) lives as long as the server: kept out of the garbage
    # collector's walks, which otherwise cost a push ~14 µs of CPU a change (3 µs once frozen).
    gc.collect()
    gc.freeze()
    print(f"Seen sync server at http://{host}:{port}/api/sync (OpenAPI: /openapi.json), "
          f"{pool.count} apply process(es)", flush=True)
    try:
        uvicorn.run(processes.WithProcesses(app, pool), host=host, port=port, log_level="warning", access_log=False)
    finally:
        pool.stop()


def apply_processes(setting: int, dialect: str) -> int:
    """How many apply processes `seen server` starts: SEEN_SYNC_PROCESSES, or by default one a core; none on SQLite
    (one writer at a time: they would only queue behind each other)."""
    if dialect != "postgresql":
        return 0
    return setting if setting >= 0 else (os.cpu_count() or 1)


def _start_scheduler(app: object) -> None:
    # The due-alert scheduler lives with push notifications; it holds its own advisory lock, so any
    # number of servers may start it and one at a time runs.
    try:
        from pwa import push
    except ModuleNotFoundError:
        return
    starter = getattr(push, "install_scheduler", None)
    if callable(starter):
        starter(app)


def _configure_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)


@register("server", "run the sync server (API and scheduler) alone, e.g. on PostgreSQL", _configure_server)
def cmd_server(args: argparse.Namespace) -> int:
    from storage.bootstrap import ServerKeyMissing
    from storage.config import settings

    config = settings()
    try:
        serve(args.host or config.host, args.port or config.port)
    except ServerKeyMissing as e:
        print(e, file=sys.stderr)
        return 2
    return 0


def _configure_enrol(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("username", help="the worker whose device this is")
    parser.add_argument("--hours", type=int, default=24, help="how long the code stays valid (default 24)")
    parser.add_argument("--by", default="admin", help="the manager or administrator issuing it")


@register("enrol", "issue a one-time code (and QR code) that enrols a worker's device", _configure_enrol)
def cmd_enrol(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from storage.models import Role, Worker
    from storage.sync.devices import issue_enrolment_code

    store = _server_store()
    with store.session() as session:
        worker = session.exec(select(Worker).where(Worker.username == args.username.strip().lower())).first()
        issuer = session.exec(select(Worker).where(Worker.username == args.by.strip().lower())).first()
        # A manager enrols devices for workers in the teams they manage; an admin for anyone.
        manages = issuer is not None and worker is not None and worker.team_id in store.managed_team_ids(
            session, issuer)
    if worker is None:
        print(f"There is no worker called {args.username}.", file=sys.stderr)
        return 2
    if issuer is None or not (issuer.role == Role.admin.value or manages):
        print("Codes are issued by the worker's manager or an administrator: give one with --by.", file=sys.stderr)
        return 2
    code = issue_enrolment_code(store, worker.id, issuer.id, hours=args.hours)
    print(f"Enrolment code for {worker.display_name}: {code} (valid {args.hours} hours, once)")
    print(qr_text(code))
    return 0


def qr_text(code: str) -> str:
    """The code as a QR code drawn in text, for a terminal."""
    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(code)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


def qr_data_url(code: str) -> str:
    """The code as a QR code SVG data URL, for a page."""
    import base64

    import qrcode
    import qrcode.image.svg

    image = qrcode.make(code, image_factory=qrcode.image.svg.SvgPathImage)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


def _configure_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "revoke"])
    parser.add_argument("device_id", nargs="?")


@register("device", "list enrolled devices, or revoke one (it wipes itself on next contact)", _configure_device)
def cmd_device(args: argparse.Namespace) -> int:
    from storage.sync.devices import devices, revoke_device
    from storage.sync.refusal import SyncRefused

    store = _server_store()
    if args.action == "list":
        for device, worker in devices(store):
            state = f"revoked {device.revoked_at:%Y-%m-%d %H:%M}" if device.revoked_at else "active"
            seen = f"{device.last_seen_at:%Y-%m-%d %H:%M}" if device.last_seen_at else "never"
            print(f"{device.id}  {worker.username:<10} {device.name[:30]:<30} {state:<24} last seen {seen}")
        return 0
    if not args.device_id:
        print("Say which device: seen device revoke DEVICE_ID (see seen device list).", file=sys.stderr)
        return 2
    try:
        revoke_device(store, args.device_id)
    except SyncRefused as e:
        print(e.message, file=sys.stderr)
        return 2
    print(f"Device {args.device_id} is revoked. On its next contact it will wipe its local records.")
    return 0


def _configure_sync(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["join", "now", "status"])
    parser.add_argument("url", nargs="?", help="join: the sync server's address")
    parser.add_argument("code", nargs="?", help="join: the enrolment code")
    parser.add_argument("--name", default="", help="join: a name for this device")


@register("sync", "on a node: join a sync server, sync now, or show sync status", _configure_sync)
def cmd_sync(args: argparse.Namespace) -> int:
    from pwa.app import open_store
    from pwa.sync.client import SyncClient, SyncUnavailable, _Refused
    from storage import sealing
    from storage.config import settings
    from storage.sync import node as sync_node

    store = open_store(settings())
    if store.locked:
        try:
            store.unlock(getpass.getpass("Passphrase: "))
        except (sealing.WrongPassphrase, sealing.TooSoon) as e:
            print(e, file=sys.stderr)
            return 2
    client = SyncClient(store)
    if args.action == "join":
        if not (args.url and args.code):
            print("Give the server's address and the code: seen sync join URL CODE", file=sys.stderr)
            return 2
        try:
            enrolment = client.enrol(args.url, args.code, args.name)
        except (SyncUnavailable, _Refused) as e:
            print(e, file=sys.stderr)
            return 2
        print(f"This node is enrolled as {enrolment.username}'s device {enrolment.device_id}.")
        return 0
    if args.action == "now":
        report = client.sync_once()
        print(f"{report.phase}: pushed {report.pushed}, audit events sent {report.audit_sent}, pulled {report.pulled}, "
              f"conflicts {report.conflicts}" + (f", refused {report.refused}" if report.refused else "")
              + (f", audit events refused {report.audit_refused}" if report.audit_refused else "")
              + (f". {report.message}" if report.message else ""))
        return 0 if report.phase == "idle" else 1
    status = sync_node.sync_status(store)
    print(f"server: {status.server_url or 'not enrolled'}\nlast synced: {status.last_synced_at or 'never'}\n"
          f"waiting changes: {status.waiting}\nconflicts: {status.conflicts}\nrefused: {status.refused}"
          + (f"\naudit events refused: {status.audit_refused}" if status.audit_refused else "")
          + (f"\nlast problem: {status.last_error}" if status.last_error else ""))
    return 0
