// The eventbus web view. Every payload goes into the page through textContent (never
// innerHTML), so an event's data can only ever show as text.
'use strict';

(() => {
  // At most this many rows stay in the live table: under a flood the page shows the newest and
  // counts the rest as skipped, so the DOM and the tab's memory stay flat.
  const MAX_ROWS = 1000;
  const MAX_HISTORY_ROWS = 2000;
  const HISTORY_PAGE = 200;
  const WINDOW_SECONDS = 300;
  // Types plotted apart; the rest are summed as "other".
  const PLOTTED_TYPES = 6;
  // Types counted apart at all (a flood of distinct types must not grow memory).
  const MAX_TYPES = 200;
  const OTHER = '(other)';
  const COLOURS = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#39c5cf', '#8b949e'];

  const $ = (id) => document.getElementById(id);

  const state = {
    info: { auth: false, where: false },
    // The last stream position seen: what a resumed stream sends as Last-Event-ID.
    lastId: null,
    paused: false,
    pattern: '',
    where: '',
    controller: null,
    pending: [],
    skipped: 0,
    received: 0,
    selected: null,
  };
  const rowEvents = new WeakMap();

  // ---- the live stream -------------------------------------------------------------------

  // The stream's query: the same parameters every client of GET /events/stream uses.
  function streamQuery() {
    const query = new URLSearchParams();
    if (state.pattern) query.set('pattern', state.pattern);
    // The CEL condition joins here once a daemon serves it (GET /ui/info says "where": true).
    if (state.info.where && state.where) query.set('where', state.where);
    return query.toString();
  }

  function setConn(name, text) {
    const badge = $('conn');
    badge.dataset.state = name;
    badge.textContent = text || name;
  }

  // The end of the log now: a first stream starts there, with an explicit position, so that a
  // pause before any event arrives still resumes without a gap.
  async function logEnd() {
    const stats = await getJson('/stats');
    const last = stats.store && stats.store.last_id;
    return last === null || last === undefined ? '0' : String(last);
  }

  async function connect() {
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    setConn('connecting');
    try {
      if (state.lastId === null) state.lastId = await logEnd();
      const response = await fetch('/events/stream?' + streamQuery(), {
        headers: { 'Last-Event-ID': state.lastId, Accept: 'text/event-stream' },
        signal: controller.signal,
        cache: 'no-store',
      });
      if (response.status === 401) return loggedOut();
      if (!response.ok) {
        const problem = await errorText(response);
        if (/after=|Last-Event-ID|no such event/.test(problem)) {
          // The daemon's log is not the one this page followed (restarted on a new store).
          state.lastId = null;
          return retry(controller);
        }
        setConn('error', 'refused');
        $('filter-error').textContent = problem;
        return;
      }
      $('filter-error').textContent = '';
      setConn('live');
      await readStream(response.body, controller);
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e instanceof LoggedOut) return loggedOut();
    }
    retry(controller);
  }

  function retry(controller) {
    if (controller.signal.aborted || state.paused || state.controller !== controller) return;
    setConn('disconnected', 'reconnecting');
    setTimeout(() => {
      if (state.controller === controller && !state.paused) connect();
    }, 1000);
  }

  async function readStream(body, controller) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done || controller.signal.aborted) return;
      buffer += value;
      // SSE frames end with a blank line; split once per chunk (linear, even under a flood).
      const frames = buffer.split('\n\n');
      buffer = frames.pop();
      for (const frame of frames) onFrame(frame);
    }
  }

  function onFrame(frame) {
    let id = null;
    let type = 'message';
    const data = [];
    for (const line of frame.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') id = value;
      else if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    if (id === null) {
      // The daemon's last word on this stream (fell behind the retention, log unreadable).
      if (type === 'error') {
        $('filter-error').textContent = data.join('\n');
        state.lastId = null;
      }
      return;
    }
    state.lastId = id;
    let event;
    try {
      event = JSON.parse(data.join('\n'));
    } catch (e) {
      return;
    }
    state.received += 1;
    countRate(event.type, event.timestamp);
    state.pending.push(event);
    // Frames arrive faster than frames are painted: keep only what could be shown.
    if (state.pending.length > 2 * MAX_ROWS) {
      const drop = state.pending.length - MAX_ROWS;
      state.pending.splice(0, drop);
      state.skipped += drop;
    }
  }

  // ---- rows --------------------------------------------------------------------------------

  function timeOf(timestamp) {
    const t = new Date(timestamp);
    if (Number.isNaN(t.getTime())) return String(timestamp);
    const pad = (n, w) => String(n).padStart(w, '0');
    return `${pad(t.getHours(), 2)}:${pad(t.getMinutes(), 2)}:${pad(t.getSeconds(), 2)}.${pad(t.getMilliseconds(), 3)}`;
  }

  function summary(data) {
    const text = JSON.stringify(data);
    if (text === undefined) return '';
    return text.length > 200 ? text.slice(0, 200) + '…' : text;
  }

  function makeRow(event) {
    const row = document.createElement('tr');
    row.dataset.id = event.id;
    row.dataset.type = event.type;
    const line = summary(event.data);
    for (const text of [timeOf(event.timestamp), event.id, event.type, line]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.appendChild(cell);
    }
    row.lastChild.title = line;
    rowEvents.set(row, event);
    return row;
  }

  function render() {
    if (state.pending.length > 0) {
      let batch = state.pending;
      state.pending = [];
      if (batch.length > MAX_ROWS) {
        state.skipped += batch.length - MAX_ROWS;
        batch = batch.slice(batch.length - MAX_ROWS);
      }
      const fragment = document.createDocumentFragment();
      for (let i = batch.length - 1; i >= 0; i -= 1) fragment.appendChild(makeRow(batch[i]));
      const rows = $('rows');
      rows.prepend(fragment);
      while (rows.childElementCount > MAX_ROWS) rows.lastElementChild.remove();
    }
    $('received').textContent = state.received.toLocaleString();
    $('skipped').textContent = state.skipped.toLocaleString();
    requestAnimationFrame(render);
  }

  function clearRows() {
    state.pending = [];
    $('rows').replaceChildren();
  }

  // ---- detail and copy-as-curl -------------------------------------------------------------

  const shellQuote = (text) => "'" + text.replace(/'/g, "'\\''") + "'";

  function curlFor(event) {
    const body = JSON.stringify({ type: event.type, data: event.data });
    const auth = state.info.auth ? ' -H "Authorization: Bearer $CLAUDE_MPM_EVENTBUS_TOKEN"' : '';
    return `curl -X POST ${location.origin}/events -H 'Content-Type: application/json'${auth} --data-binary ${shellQuote(body)}`;
  }

  function select(row) {
    const event = rowEvents.get(row);
    if (!event) return;
    if (state.selected) state.selected.classList.remove('selected');
    row.classList.add('selected');
    state.selected = row;
    $('json').textContent = JSON.stringify(event, null, 2);
    $('curl').textContent = curlFor(event);
    $('copied').textContent = '';
    $('copy-curl').disabled = false;
  }

  async function copyCurl() {
    const text = $('curl').textContent;
    try {
      await navigator.clipboard.writeText(text);
      $('copied').textContent = 'copied';
    } catch (e) {
      $('copied').textContent = 'select the command below to copy it';
    }
  }

  // ---- rates by type -----------------------------------------------------------------------

  // One count per second per type over the last five minutes, in rings indexed by second.
  const rates = { head: Math.floor(Date.now() / 1000), types: new Map(), total: new Float64Array(WINDOW_SECONDS) };

  function advanceTo(second) {
    if (second - rates.head >= WINDOW_SECONDS) rates.head = second - WINDOW_SECONDS;
    while (rates.head < second) {
      rates.head += 1;
      const i = rates.head % WINDOW_SECONDS;
      rates.total[i] = 0;
      for (const ring of rates.types.values()) ring[i] = 0;
    }
  }

  function countRate(type, timestamp) {
    const now = Math.floor(Date.now() / 1000);
    advanceTo(now);
    let second = Math.floor(Date.parse(timestamp) / 1000);
    if (Number.isNaN(second) || second > now) second = now;
    if (second <= now - WINDOW_SECONDS) return;
    let ring = rates.types.get(type);
    if (!ring) {
      if (rates.types.size >= MAX_TYPES) {
        type = OTHER;
        ring = rates.types.get(OTHER);
      }
      if (!ring) {
        ring = new Float64Array(WINDOW_SECONDS);
        rates.types.set(type, ring);
      }
    }
    ring[second % WINDOW_SECONDS] += 1;
    rates.total[second % WINDOW_SECONDS] += 1;
  }

  const sum = (ring) => ring.reduce((a, b) => a + b, 0);

  function drawPlot() {
    const now = Math.floor(Date.now() / 1000);
    advanceTo(now);
    for (const [type, ring] of rates.types) if (sum(ring) === 0) rates.types.delete(type);
    // The last whole second.
    $('rate').textContent = rates.total[(now - 1) % WINDOW_SECONDS].toLocaleString();

    const ranked = [...rates.types].map(([type, ring]) => [type, ring, sum(ring)]).sort((a, b) => b[2] - a[2]);
    const series = ranked.slice(0, PLOTTED_TYPES).map(([type, ring]) => [type, ring]);
    if (ranked.length > PLOTTED_TYPES) {
      const other = new Float64Array(WINDOW_SECONDS);
      for (const [, ring] of ranked.slice(PLOTTED_TYPES)) for (let i = 0; i < WINDOW_SECONDS; i += 1) other[i] += ring[i];
      series.push([OTHER, other]);
    }

    const canvas = $('plot');
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio;
    const height = canvas.clientHeight * ratio;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, width, height);
    let peak = 1;
    for (const [, ring] of series) for (const v of ring) peak = Math.max(peak, v);
    // A round top for the axis: 1, 2 or 5 times a power of ten.
    const step = 10 ** Math.floor(Math.log10(peak));
    const top = [1, 2, 5, 10].map((m) => m * step).find((t) => t >= peak);
    const left = 44 * ratio;
    const bottom = height - 16 * ratio;
    const x = (age) => left + (width - left - 4 * ratio) * (1 - age / (WINDOW_SECONDS - 1));
    const y = (v) => bottom - (bottom - 6 * ratio) * (v / top);
    ctx.font = `${11 * ratio}px sans-serif`;
    ctx.fillStyle = '#8b949e';
    ctx.strokeStyle = '#30363d';
    ctx.lineWidth = ratio;
    for (const v of [0, top / 2, top]) {
      ctx.beginPath();
      ctx.moveTo(left, y(v));
      ctx.lineTo(width, y(v));
      ctx.stroke();
      ctx.fillText(Number.isInteger(v) ? v.toLocaleString() : v.toFixed(1), 2 * ratio, y(v) + 4 * ratio);
    }
    for (const [age, label] of [[299, '-5 min'], [150, '-2.5 min'], [0, 'now']]) {
      ctx.fillText(label, Math.min(x(age), width - 28 * ratio), height - 3 * ratio);
    }
    const legend = $('legend');
    legend.replaceChildren();
    series.forEach(([type, ring], n) => {
      const colour = COLOURS[n % COLOURS.length];
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5 * ratio;
      ctx.beginPath();
      // Oldest to newest; the current second is still filling, so it is left out.
      for (let age = WINDOW_SECONDS - 1; age >= 1; age -= 1) {
        const v = ring[(now - age) % WINDOW_SECONDS];
        if (age === WINDOW_SECONDS - 1) ctx.moveTo(x(age), y(v));
        else ctx.lineTo(x(age), y(v));
      }
      ctx.stroke();
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colour;
      item.append(swatch, `${type}: ${ring[(now - 1) % WINDOW_SECONDS].toLocaleString()}/s`);
      legend.appendChild(item);
    });
  }

  // ---- stats: totals and consumers ---------------------------------------------------------

  class LoggedOut extends Error {}

  async function getJson(path) {
    const response = await fetch(path, { cache: 'no-store' });
    if (response.status === 401) throw new LoggedOut();
    if (!response.ok) throw new Error(await errorText(response));
    return response.json();
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.error || `HTTP ${response.status}`;
    } catch (e) {
      return `HTTP ${response.status}`;
    }
  }

  function loggedOut() {
    // The session ended (expired, logged out elsewhere): the page shows the login form.
    if (state.controller) state.controller.abort();
    location.assign('/');
  }

  const show = (v) => (v === undefined || v === null ? '–' : typeof v === 'number' ? v.toLocaleString() : String(v));

  // One row per consumer, whatever reports it: the bus's subscribers, the durable consumers
  // that follow the log, the relay's own figures, and any other consumer's section.
  function consumerRows(stats) {
    const rows = [];
    for (const s of stats.subscribers || []) {
      rows.push({ name: s.name, delivered: s.delivered, failed: s.failed, dropped: s.dropped, queue: `${show(s.queue_len)} / ${show(s.queue_capacity)}` });
    }
    const relay = stats.relay;
    let relayPlaced = false;
    for (const [name, d] of Object.entries(stats.durable || {})) {
      const row = { name: `${name} (durable)`, delivered: d.handed, failed: d.failures, dropped: d.missed, lag: d.lag };
      if (relay && /relay/.test(name)) {
        relayPlaced = true;
        Object.assign(row, { delivered: relay.relayed, dropped: (d.missed || 0) + (relay.dropped || 0), queue: `${show(relay.buffered)} / ${show(relay.buffer_capacity)}`, connected: relay.connected });
      }
      rows.push(row);
    }
    if (stats.sse) rows.push({ name: `SSE clients: ${show(stats.sse.open)} open (this page too)` });
    if (relay && !relayPlaced) {
      rows.push({ name: 'socketio-relay', delivered: relay.relayed, dropped: relay.dropped, queue: `${show(relay.buffered)} / ${show(relay.buffer_capacity)}`, connected: relay.connected });
    }
    return rows;
  }

  async function refreshStats() {
    try {
      const stats = await getJson('/stats');
      $('t-published').textContent = show(stats.events_published);
      $('t-filtered').textContent = show(stats.events_filtered);
      $('t-failed').textContent = show(stats.events_failed);
      $('t-dropped').textContent = show(stats.events_dropped);
      const body = $('consumer-rows');
      body.replaceChildren();
      for (const c of consumerRows(stats)) {
        const row = document.createElement('tr');
        const connected = c.connected === undefined ? '–' : c.connected ? 'yes' : 'no';
        for (const v of [c.name, show(c.delivered), show(c.failed), show(c.dropped), c.queue || '–', show(c.lag), connected]) {
          const cell = document.createElement('td');
          cell.textContent = v;
          row.appendChild(cell);
        }
        body.appendChild(row);
      }
    } catch (e) {
      if (e instanceof LoggedOut) loggedOut();
    }
  }

  // ---- history -----------------------------------------------------------------------------

  const history = { next: null, since: '', loading: false };

  async function loadHistory(fresh) {
    if (history.loading) return;
    history.loading = true;
    const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (history.since) query.set('since', history.since);
    if (!fresh && history.next) query.set('after', history.next);
    $('history-status').textContent = 'loading…';
    try {
      const page = await getJson('/events?' + query);
      const body = $('history-rows');
      if (fresh) body.replaceChildren();
      for (const event of page.events) body.appendChild(makeRow(event));
      let trimmed = 0;
      while (body.childElementCount > MAX_HISTORY_ROWS) {
        body.firstElementChild.remove();
        trimmed += 1;
      }
      history.next = page.next;
      $('more').hidden = page.next === null;
      const first = body.firstElementChild;
      $('history-status').textContent = body.childElementCount === 0
        ? 'no stored events there'
        : `${body.childElementCount} events from ${first.firstChild.textContent}${trimmed ? ' (older rows let go)' : ''}${page.next === null ? '; up to date' : ''}`;
    } catch (e) {
      if (e instanceof LoggedOut) return loggedOut();
      $('history-status').textContent = e.message;
    } finally {
      history.loading = false;
    }
  }

  // ---- wiring ------------------------------------------------------------------------------

  function onTableClick(e) {
    const row = e.target.closest('tr');
    if (row && row.parentElement && row.parentElement.tagName === 'TBODY') select(row);
  }

  function togglePause() {
    state.paused = !state.paused;
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
    if (state.paused) {
      if (state.controller) state.controller.abort();
      state.controller = null;
      setConn('paused');
    } else {
      // Resumes from the last event shown: the daemon sends what came meanwhile.
      connect();
    }
  }

  async function start() {
    try {
      state.info = await getJson('/ui/info');
    } catch (e) {
      if (e instanceof LoggedOut) return loggedOut();
    }
    $('logout').hidden = !state.info.auth;
    $('where-box').hidden = !state.info.where;
    $('filter').addEventListener('submit', (e) => {
      e.preventDefault();
      state.pattern = $('pattern').value.trim();
      state.where = $('where').value.trim();
      clearRows();
      if (!state.paused) connect();
    });
    $('pause').addEventListener('click', togglePause);
    $('rows').addEventListener('click', onTableClick);
    $('history-rows').addEventListener('click', onTableClick);
    $('copy-curl').addEventListener('click', copyCurl);
    $('history-form').addEventListener('submit', (e) => {
      e.preventDefault();
      history.since = $('since').value.trim();
      history.next = null;
      loadHistory(true);
    });
    $('oldest').addEventListener('click', () => {
      $('since').value = '';
      history.since = '';
      history.next = null;
      loadHistory(true);
    });
    $('more').addEventListener('click', () => loadHistory(false));
    // Scrolling to the end of the history loads the next page.
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && history.next) loadHistory(false);
    }, { root: $('history-scroll') }).observe($('more'));

    requestAnimationFrame(render);
    setInterval(drawPlot, 1000);
    setInterval(refreshStats, 1000);
    drawPlot();
    refreshStats();
    connect();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
