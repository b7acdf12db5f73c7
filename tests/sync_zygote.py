"""Forks real `seen server` processes fast, for the fault test: imported once, started many times.

Reads {"port": N} lines on stdin, forks a child that runs `pwa.sync.commands.serve` on that port, and
prints the child's pid. The test SIGKILLs children itself; this process reaps them. When its stdin closes
it kills the servers it forked, and each server dies with it if it is killed first, so nothing outlives the test.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

import uvicorn  # noqa: F401  (imported here once, so each forked server starts at once)

import pwa.push  # noqa: F401  (the scheduler `seen server` starts)
import pwa.sync.client  # noqa: F401
import pwa.sync.server  # noqa: F401
import storage.bootstrap  # noqa: F401
from pwa.sync.commands import serve

PR_SET_PDEATHSIG = 1


def main() -> None:
    children: list[int] = []
    print("ready", flush=True)
    for line in sys.stdin:
        while True:  # reap the servers the test has killed
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        port = int(json.loads(line)["port"])
        pid = os.fork()
        if pid == 0:
            # Linux: deliver SIGKILL to this server when the zygote dies, however it dies.
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            try:
                serve("127.0.0.1", port)
            finally:
                os._exit(0)
        children.append(pid)
        print(pid, flush=True)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    main()
