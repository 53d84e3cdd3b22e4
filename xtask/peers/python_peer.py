#!/usr/bin/env python3
"""One `cargo xtask bench` workload on a Python emitter; prints one JSON line.

Usage: python_peer.py LIBRARY WORKLOAD SECONDS

LIBRARY: pyee (pyee 13 EventEmitter; AsyncIOEventEmitter for async-1) or blinker.
WORKLOAD: exact-1, exact-10, wild-100, async-1, fanout-10, threads-2 (as in bus-core's benches).

Every workload emits one prebuilt shared payload. It runs a short untimed warm-up, then
emits in chunks until SECONDS have passed. The JSON says how many events were emitted in the
timed part, how long it took, how many handler calls happened during it (`delivered`) and
how many reached a handler that must not match (`misdelivered`): the xtask checks them.
A workload the library cannot express exits with status 3 and says why on stderr.
"""

import asyncio
import json
import resource
import sys
import threading
import time

EVENT = "hook.pre_tool"
PAYLOAD = {"tool_name": "Read", "file_path": "/example.py", "sessionId": "abc-123"}
CHUNK = 10_000
ASYNC_BATCH = 20_000  # as bus-core's async-1: publish a batch, then wait until all handled


class Counter:
    """Handler calls, counted per thread so threads-2 measures the emitter, not a lock."""

    def __init__(self):
        self.local = threading.local()
        self.totals = []
        self.lock = threading.Lock()

    def hit(self, *_args, **_kwargs):
        self.local.n = getattr(self.local, "n", 0) + 1

    def collect(self):
        """Called by each emitting thread when it is done."""
        with self.lock:
            self.totals.append(getattr(self.local, "n", 0))
            self.local.n = 0

    def total(self):
        return sum(self.totals)


def not_applicable(reason):
    print(reason, file=sys.stderr)
    sys.exit(3)


def timed_loop(emit, seconds):
    """Emits in chunks until `seconds` have passed; returns (events, elapsed)."""
    events = 0
    start = time.perf_counter()
    while True:
        for _ in range(CHUNK):
            emit()
        events += CHUNK
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return events, elapsed


def sync_emitter(library, handlers, counter):
    """Returns a zero-argument emit function with `handlers` counting handlers attached."""
    if library == "pyee":
        from pyee import EventEmitter

        ee = EventEmitter()
        for _ in range(handlers):
            ee.on(EVENT, lambda data, hit=counter.hit: hit())
        return lambda: ee.emit(EVENT, PAYLOAD)
    from blinker import Signal

    signal = Signal()
    for _ in range(handlers):
        # weak=False: a lambda has no other reference and would be collected at once.
        signal.connect(lambda sender, hit=counter.hit, **kw: hit(), weak=False)
    return lambda: signal.send(EVENT, data=PAYLOAD)


def run_sync(library, workload, seconds):
    if workload == "wild-100":
        not_applicable(f"{library} has no wildcard subscriptions")
    handlers = 10 if workload == "exact-10" else 1
    counter = Counter()
    emit = sync_emitter(library, handlers, counter)
    timed_loop(emit, seconds / 10)  # warm-up
    counter.collect()
    counter.totals.clear()
    if workload != "threads-2":
        events, elapsed = timed_loop(emit, seconds)
        counter.collect()
        return events, elapsed, counter.total(), 0
    results = []

    def publisher():
        results.append(timed_loop(emit, seconds))
        counter.collect()

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return sum(r[0] for r in results), elapsed, counter.total(), 0


async def async_pyee(handlers, seconds):
    from pyee.asyncio import AsyncIOEventEmitter

    ee = AsyncIOEventEmitter()
    handled = {"n": 0}

    for _ in range(handlers):

        async def handler(data):
            handled["n"] += 1

        ee.on(EVENT, handler)

    async def batch():
        target = handled["n"] + ASYNC_BATCH * handlers
        for _ in range(ASYNC_BATCH):
            ee.emit(EVENT, PAYLOAD)
        # Each emit scheduled a task: yield to the loop until every one has run.
        while handled["n"] < target:
            await asyncio.sleep(0)

    return await async_timed(batch, seconds, handled)


async def async_blinker(handlers, seconds):
    from blinker import Signal

    signal = Signal()
    handled = {"n": 0}

    for _ in range(handlers):

        async def handler(sender, **kw):
            handled["n"] += 1

        signal.connect(handler, weak=False)

    async def batch():
        for _ in range(ASYNC_BATCH):
            # send_async awaits each receiver before returning: no queue in between.
            await signal.send_async(EVENT, data=PAYLOAD)

    return await async_timed(batch, seconds, handled)


async def async_timed(batch, seconds, handled):
    await batch()  # warm-up
    before = handled["n"]
    events = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        await batch()
        events += ASYNC_BATCH
    elapsed = time.perf_counter() - start
    return events, elapsed, handled["n"] - before, 0


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    library, workload, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if library not in ("pyee", "blinker"):
        sys.exit(f"unknown library {library!r}")
    if workload in ("async-1", "fanout-10"):
        runner = async_pyee if library == "pyee" else async_blinker
        handlers = 1 if workload == "async-1" else 10
        events, elapsed, delivered, wrong = asyncio.run(runner(handlers, seconds))
    elif workload in ("exact-1", "exact-10", "wild-100", "threads-2"):
        events, elapsed, delivered, wrong = run_sync(library, workload, seconds)
    else:
        sys.exit(f"unknown workload {workload!r}")
    print(
        json.dumps(
            {
                "library": library,
                "workload": workload,
                "events": events,
                "seconds": elapsed,
                "delivered": delivered,
                "misdelivered": wrong,
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
