#!/usr/bin/env node
// One `cargo xtask bench` workload on a Node emitter; prints one JSON line.
//
// Usage: node node_peer.js LIBRARY WORKLOAD SECONDS
//
// LIBRARY: events (Node's EventEmitter) or eventemitter2 (EventEmitter2, wildcard: true).
// WORKLOAD: exact-1, exact-10, wild-100, async-1, fanout-10, threads-2 (as in bus-core's benches).
//
// Every workload emits one prebuilt shared payload. It runs a short untimed warm-up (JIT),
// then emits in chunks until SECONDS have passed. The JSON says how many events were emitted
// in the timed part, how long it took, how many handler calls happened during it
// (`delivered`) and how many reached a handler that must not match (`misdelivered`): the
// xtask checks them. A workload the library cannot express exits with status 3 and says why.
'use strict';

const EVENT = 'hook.pre_tool';
const PAYLOAD = { tool_name: 'Read', file_path: '/example.py', sessionId: 'abc-123' };
const CHUNK = 10000;
const ASYNC_BATCH = 20000; // as bus-core's async-1: publish a batch, then wait until all handled

const counts = { delivered: 0, misdelivered: 0 };

function notApplicable(reason) {
  process.stderr.write(reason + '\n');
  process.exit(3);
}

function emitter(library) {
  if (library === 'events') {
    const { EventEmitter } = require('events');
    const ee = new EventEmitter();
    ee.setMaxListeners(0);
    return ee;
  }
  const { EventEmitter2 } = require('eventemitter2');
  return new EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 0 });
}

function timedLoop(emit, seconds) {
  let events = 0;
  const start = process.hrtime.bigint();
  for (;;) {
    for (let i = 0; i < CHUNK; i++) emit();
    events += CHUNK;
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    if (elapsed >= seconds) return { events, elapsed };
  }
}

function runSync(library, workload, seconds) {
  const ee = emitter(library);
  if (workload === 'wild-100') {
    if (library === 'events') notApplicable("Node's EventEmitter has no wildcard subscriptions");
    for (let n = 0; n < 100; n++) ee.on(`svc${n}.*`, () => { counts.misdelivered++; });
    ee.on('hook.*', () => { counts.delivered++; });
  } else {
    const handlers = workload === 'exact-10' ? 10 : 1;
    for (let h = 0; h < handlers; h++) ee.on(EVENT, () => { counts.delivered++; });
  }
  const emit = () => ee.emit(EVENT, PAYLOAD);
  timedLoop(emit, seconds / 10); // warm-up
  counts.delivered = 0;
  return timedLoop(emit, seconds);
}

// One async handler (async-1) or ten (fanout-10). With EventEmitter the listener is an async function (its body runs
// inside emit, the returned promise is dropped, as a Node program would do); with
// EventEmitter2 each batch goes through emitAsync and is awaited, so all are handled.
async function runAsync(library, handlers, seconds) {
  const ee = emitter(library);
  for (let h = 0; h < handlers; h++) ee.on(EVENT, async () => { counts.delivered++; });
  const batch = library === 'events'
    ? async () => {
      for (let i = 0; i < ASYNC_BATCH; i++) ee.emit(EVENT, PAYLOAD);
      await new Promise(setImmediate); // let every pending promise settle
    }
    : async () => {
      const pending = new Array(ASYNC_BATCH);
      for (let i = 0; i < ASYNC_BATCH; i++) pending[i] = ee.emitAsync(EVENT, PAYLOAD);
      await Promise.all(pending);
    };
  await batch(); // warm-up
  counts.delivered = 0;
  let events = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    await batch();
    events += ASYNC_BATCH;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  return { events, elapsed };
}

async function main() {
  const [library, workload, secondsArg] = process.argv.slice(2);
  const seconds = Number(secondsArg);
  if (!['events', 'eventemitter2'].includes(library) || !(seconds > 0)) {
    process.stderr.write('usage: node_peer.js events|eventemitter2 WORKLOAD SECONDS\n');
    process.exit(2);
  }
  let result;
  if (workload === 'async-1' || workload === 'fanout-10') {
    result = await runAsync(library, workload === 'async-1' ? 1 : 10, seconds);
  } else if (workload === 'threads-2') {
    notApplicable('one emitter lives in one thread in Node (worker_threads would each need their own emitter)');
  } else if (['exact-1', 'exact-10', 'wild-100'].includes(workload)) {
    result = runSync(library, workload, seconds);
  } else {
    process.stderr.write(`unknown workload ${workload}\n`);
    process.exit(2);
  }
  process.stdout.write(JSON.stringify({
    library,
    workload,
    events: result.events,
    seconds: result.elapsed,
    delivered: counts.delivered,
    misdelivered: counts.misdelivered,
    peak_rss_kb: process.resourceUsage().maxRSS,
  }) + '\n');
}

main();
