#!/usr/bin/env python3
"""Starts the real claude-mpm monitor in the foreground, bound to the life of its parent.

Usage:
    claude_mpm_monitor.py CLAUDE_MPM PORT

CLAUDE_MPM is the ``claude-mpm`` script of the virtualenv it was installed into. This asks
the kernel to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``), then replaces
itself with ``claude-mpm monitor start --port PORT --host localhost --foreground``: the
monitor keeps this process id and the death signal, so an interrupted test or xtask run that
dies without stopping it leaves no monitor behind (``tools/dashboard_server.py`` does the same
by polling its parent). The signal fires when the *thread* that started this process exits,
so start it from a thread that outlives it.

The monitor writes into its working directory (``.claude-mpm/``, ``.claude/``) and its
``$HOME`` (``~/.claude-mpm``, ``~/.claude``): run it with both pointed at scratch directories.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    claude_mpm, port = sys.argv[1], sys.argv[2]
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}")
    # The parent may have died before the death signal was armed.
    if os.getppid() != parent:
        sys.exit("the parent exited before the monitor started")
    os.execv(
        claude_mpm,
        [claude_mpm, "monitor", "start", "--port", port, "--host", "localhost", "--foreground"],
    )


if __name__ == "__main__":
    main()
