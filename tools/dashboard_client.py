#!/usr/bin/env python3
"""A Socket.IO client that listens to the claude-mpm monitor the way its dashboard does.

Usage:
    dashboard_client.py URL --record FILE

It connects to URL (python-socketio ``AsyncClient``, reconnecting forever, 1 s to 5 s apart)
and listens, as the monitor's Svelte dashboard does, to ``claude_event`` and the ``*_event``
names (``hook_event``, ``tool_event``, ``cli_event``, ``system_event``, ``agent_event``,
``build_event``, ``session_event``, ``response_event``, ``file_event``) and to
``event_history``, and also to ``hook:event``, the monitor's other broadcast of each event.
On every connection (the first and each reconnection) it emits ``hook:history:get`` with
``{"limit": 0}`` (all the monitor keeps) and records each event of the
``hook:history:response`` reply.

Every event is appended to FILE as one JSON line ``{"via": NAME, "connection": N,
"event": PAYLOAD}`` and flushed. On stdout it prints ``CONNECTED N`` after connection N and
``HISTORY N COUNT`` when connection N's history reply arrived (flushed), so a test can wait
for them. It exits when its parent dies.
"""

import argparse
import asyncio
import json
import os
import sys

import socketio

# What the monitor's Svelte dashboard (claude_mpm/dashboard/static/svelte-build, 6.5.83)
# subscribes to, plus the monitor's second broadcast name.
LIVE_EVENTS = [
    "claude_event",
    "hook_event",
    "tool_event",
    "cli_event",
    "system_event",
    "agent_event",
    "build_event",
    "session_event",
    "response_event",
    "file_event",
    "hook:event",
]


async def run(url, record_path):
    record = open(record_path, "a", encoding="utf-8")
    sio = socketio.AsyncClient(
        reconnection=True,
        reconnection_attempts=0,
        reconnection_delay=1,
        reconnection_delay_max=5,
    )
    state = {"connection": 0}

    def write(via, event):
        line = {"via": via, "connection": state["connection"], "event": event}
        record.write(json.dumps(line, separators=(",", ":")) + "\n")
        record.flush()

    def listen(name):
        async def handler(data=None):
            write(name, data)

        sio.on(name, handler)

    for name in LIVE_EVENTS:
        listen(name)

    @sio.on("event_history")
    async def on_event_history(data=None):
        for event in (data or {}).get("events") or []:
            write("event_history", event)

    @sio.on("hook:history:response")
    async def on_history(data=None):
        events = (data or {}).get("events") or []
        for event in events:
            write("hook:history:response", event)
        print(f"HISTORY {state['connection']} {len(events)}", flush=True)

    @sio.event
    async def connect():
        state["connection"] += 1
        print(f"CONNECTED {state['connection']}", flush=True)
        await sio.emit("hook:history:get", {"limit": 0})

    @sio.event
    async def disconnect(reason=None):
        print(f"DISCONNECTED {state['connection']} {reason}", flush=True)

    parent = os.getppid()

    async def exit_with_parent():
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        os._exit(0)

    watchdog = asyncio.create_task(exit_with_parent())
    while True:
        try:
            # Long-polling first, then the upgrade to WebSocket, as the dashboard connects.
            await sio.connect(url, wait_timeout=10)
            break
        except socketio.exceptions.ConnectionError as error:
            print(f"connect failed: {error}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)
    await sio.wait()
    await watchdog


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--record", required=True)
    args = parser.parse_args()
    try:
        asyncio.run(run(args.url, args.record))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
