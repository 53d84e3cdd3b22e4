#!/usr/bin/env python3
"""A stand-in for the claude-mpm dashboard's Socket.IO server, for relay-socketio's tests.

Like the dashboard it is a python-socketio 5.x ``AsyncServer`` on aiohttp, namespace ``/``,
with a ``claude_event`` handler that answers acknowledgements. Every payload it receives is
appended, as one JSON line, to the record file and flushed before the ack is sent, so a
test can read back exactly what the server confirmed, even after killing it with SIGKILL.

Usage:
    dashboard_server.py PORT [--record FILE] [--event NAME] [--no-ack]

PORT 0 picks a free port. Once listening it prints ``LISTENING <port>`` on stdout (and
flushes), so a test can wait for that line. SIGTERM stops it the way aiohttp does: a
graceful shutdown.
"""

import argparse
import asyncio
import json
import os
import socket
import sys

import socketio
from aiohttp import web


def build_app(record_path, event_name, ack):
    # async_handlers=False runs the handlers in arrival order, one at a time, so an ack
    # means every earlier event of the connection was recorded first.
    sio = socketio.AsyncServer(async_mode="aiohttp", async_handlers=False)
    app = web.Application()
    sio.attach(app)
    record = open(record_path, "a", encoding="utf-8") if record_path else None
    received = {"count": 0}

    @sio.event
    async def connect(sid, environ, auth=None):
        print(f"CONNECT {sid}", file=sys.stderr, flush=True)

    @sio.event
    async def disconnect(sid, reason=None):
        print(f"DISCONNECT {sid} {reason}", file=sys.stderr, flush=True)

    async def on_event(sid, data=None):
        received["count"] += 1
        if record is not None:
            record.write(json.dumps(data, separators=(",", ":")) + "\n")
            record.flush()
        if ack:
            return "ok"
        return None

    sio.on(event_name, on_event)

    async def count(_request):
        return web.json_response({"received": received["count"]})

    app.router.add_get("/count", count)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="port to listen on (0: any free port)")
    parser.add_argument("--record", help="append every received payload to this JSON-lines file")
    parser.add_argument("--event", default="claude_event", help="Socket.IO event to handle")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-ack", action="store_true", help="never answer acknowledgements")
    args = parser.parse_args()

    # Bind first, so the port is known (and taken) before anyone is told about it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    app = build_app(args.record, args.event, not args.no_ack)

    parent = os.getppid()
    background = []

    async def exit_with_parent():
        # A test or xtask run that dies without stopping this server must not leave it
        # behind: once the parent is gone (we are re-parented), exit.
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        os._exit(0)

    async def on_startup(_app):
        # The socket already listens: connections wait in its backlog until served.
        print(f"LISTENING {port}", flush=True)
        background.append(asyncio.get_running_loop().create_task(exit_with_parent()))

    app.on_startup.append(on_startup)
    web.run_app(app, sock=sock, print=None, handle_signals=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except asyncio.CancelledError:
        pass
