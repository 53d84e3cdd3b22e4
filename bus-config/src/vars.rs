//! The table of every environment variable: name, default, what it accepts, what it does.
//!
//! One source for the crate docs, `eventbus config` (text and JSON) and the unknown-variable
//! warnings. Adding a variable: a row here, one read in its section's module under `config/`,
//! and the field it fills.

/// The prefix every variable shares.
pub const PREFIX: &str = "CLAUDE_MPM_";

/// One environment variable the daemon reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarSpec {
    /// The full name, such as `CLAUDE_MPM_EVENTBUS_ENABLED`.
    pub name: &'static str,
    /// Where `eventbus config --json` shows it: `section.field`, such as `relay.retry_delay`.
    pub key: &'static str,
    /// The default, as text (`unset` when there is none).
    pub default: &'static str,
    /// What values it accepts.
    pub accepts: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

const BOOL: &str = "true/false, 1/0, yes/no, on/off (any case)";

/// Every variable, in the order `eventbus config` prints them.
pub const VARS: &[VarSpec] = &[
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_ENABLED",
        key: "bus.enabled",
        default: "true",
        accepts: BOOL,
        meaning: "bus on/off; while off, publishes are refused (nothing counted or recorded)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_DEBUG",
        key: "bus.debug",
        default: "false",
        accepts: BOOL,
        meaning: "debug logging: the log level becomes `debug` and every accepted event is logged",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_HISTORY_SIZE",
        key: "bus.history_size",
        default: "100",
        accepts: "whole number 0-100000 (0 turns history off)",
        meaning: "how many recent events the bus keeps in memory (`history_size` in `GET /stats`); `GET /events/recent` reads the durable log",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_HISTORY_MAX_BYTES",
        key: "bus.history_max_bytes",
        default: "67108864",
        accepts: "whole number of bytes 0-1099511627776 (0: no byte bound)",
        meaning: "the most event data the in-memory history holds (JSON text size); past it the oldest events go first",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_FILTERS",
        key: "bus.filters",
        default: "empty (allow all)",
        accepts: "comma-separated event-type patterns (`hook.*`, `a?c`, exact names), at most 1000; empty or unset allows all (commas with no pattern, such as `,,`, are refused)",
        meaning: "allow-list: when set, only matching events are accepted",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY",
        key: "bus.queue_capacity",
        default: "10000",
        accepts: "whole number 1-10000000",
        meaning: "events each consumer's queue holds before the overflow policy applies",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_OVERFLOW",
        key: "bus.overflow",
        default: "drop_newest",
        accepts: "drop_newest, drop_oldest or block (any case, `-` or `_`)",
        meaning: "what a full consumer queue does with a new event",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_PRIORITIES",
        key: "limits.priorities",
        default: "empty (every event normal)",
        accepts: "comma-separated `pattern=priority` rules (priority: high, normal or low), first match wins, such as `hook.error*=high,hook.subagent_stop=high,hook.pre_tool=low`",
        meaning: "event priorities in every consumer's queue and the relay's send buffer: high goes first, low last but with 1 event in 8 while it waits; a full queue drops the lowest first. An event's own `\"priority\"` (POST /events) wins",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_FILTER_WHERE",
        key: "bus.filter_where",
        default: "unset (no condition)",
        accepts: "a CEL expression over `type`, `id`, `timestamp` and `data`, such as `data.tool_name != \"Read\"`",
        meaning: "the allow-list gains a condition: only events it matches are accepted (checked after `CLAUDE_MPM_EVENTBUS_FILTERS`; an event it cannot be evaluated on is filtered and counted)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_SCHEMAS",
        key: "schema.file",
        default: "unset (no validation)",
        accepts: "path to a JSON file: `{\"pattern\": schema or {\"$ref\": \"relative/path.json\"}, ...}` (JSON Schema 2020-12 or a draft the schema declares; local `$ref`s only)",
        meaning: "events are checked against the schema of every pattern matching their type before they are published; reloaded by `PATCH /config` `{\"reload_schemas\": true}` and SIGHUP",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_SCHEMA_MODE",
        key: "schema.mode",
        default: "reject",
        accepts: "reject or warn",
        meaning: "what an invalid event gets: `reject` refuses it (422 naming each broken rule), `warn` accepts it, counts and logs it",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_HTTP_ADDR",
        key: "http.addr",
        default: "127.0.0.1:8770",
        accepts: "IP:PORT (`[::1]:8770` for IPv6)",
        meaning: "where the daemon listens, and where `eventbus publish` sends",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES",
        key: "http.max_body_bytes",
        default: "16777216",
        accepts: "whole number of bytes 1-1073741824",
        meaning: "largest request body `POST /events` and `PATCH /config` accept (413 above it)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES",
        key: "http.body_budget_bytes",
        default: "67108864",
        accepts: "whole number of bytes 1-1099511627776 (never below MAX_BODY_BYTES)",
        meaning: "request bodies the daemon reads and parses at once; a body that does not fit now gets 503 with Retry-After",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_TOKEN",
        key: "http.token",
        default: "unset",
        accepts: "any non-empty text without whitespace",
        meaning: "when set, every route but `GET /healthz` and `GET /metrics` needs `Authorization: Bearer <token>` (reads too: they show event payloads); required on a non-loopback address",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS",
        key: "http.allowed_origins",
        default: "empty (only the daemon's own origin)",
        accepts: "comma-separated origins such as `http://localhost:3000` (scheme, host and port)",
        meaning: "web pages allowed to call the API: a request with any other `Origin` header (`null` included) gets 403. Requests without `Origin` (curl, hooks, `eventbus publish`) are not affected",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS",
        key: "http.allowed_hosts",
        default: "empty (the bound address and loopback names)",
        accepts: "comma-separated host names or `host:port` (any case)",
        meaning: "`Host` headers accepted besides the bound address and `localhost`/`127.0.0.1`/`[::1]` with its port; any other gets 421 (against DNS rebinding)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT",
        key: "http.idle_timeout",
        default: "60s",
        accepts: "duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "a connection with no request in progress and no bytes received for this long is closed (keep-alive idle time)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_HEADER_TIMEOUT",
        key: "http.header_timeout",
        default: "10s",
        accepts: "duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "a request's headers must arrive whole within this time of its first byte, or the connection is closed",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT",
        key: "http.body_timeout",
        default: "30s",
        accepts: "duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "a request body that sends nothing for this long is abandoned (408) and its connection closed",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS",
        key: "http.max_connections",
        default: "1000 (lowered to the file limit less 64 when that is smaller)",
        accepts: "whole number 1-1000000",
        meaning: "open connections the daemon keeps; at the limit it closes the longest-idle connection to take a new one (logged as a warning), and stops accepting while every connection is busy",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_STORE",
        key: "store.path",
        default: "`$XDG_STATE_HOME/eventbus/events.db` (`~/.local/state/eventbus/events.db`)",
        accepts: "a file path, or `memory`",
        meaning: "the durable event log (SQLite, WAL): `POST /events` answers 2xx once the events are committed there; ids come from it and survive restarts. `memory` keeps the log in memory (lost on exit)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_STORE_SYNC",
        key: "store.sync",
        default: "full",
        accepts: "full, normal or off (any case)",
        meaning: "when a commit is on disk: `full` fsyncs before answering (nothing acknowledged is lost, even on power loss); `normal` survives a daemon crash but may lose the last commits on an OS crash or power loss; `off` may lose more, and corrupt the file, on an OS crash",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS",
        key: "store.retention_events",
        default: "1000000",
        accepts: "whole number 1-1000000000",
        meaning: "the log keeps at most this many events; older ones are trimmed (counted in `GET /stats`)",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_RETENTION_AGE",
        key: "store.retention_age",
        default: "7d",
        accepts: "duration above 0, up to 3650d, with a unit (`12h`, `7d`)",
        meaning: "the log trims events older than this",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_REDIS_URL",
        key: "store.redis_url",
        default: "unset",
        accepts: "`redis://[user:password@]host[:port][/db]`, or `rediss://...` (TLS)",
        meaning: "puts the log on a Redis stream (Redis 7+) instead of `CLAUDE_MPM_EVENTBUS_STORE`: every daemon on the same stream delivers every event, whichever daemon it was posted to, in stream order; `POST /events` answers 2xx only once Redis has the events, 503 naming the cause while it is unreachable. The password is masked wherever the URL is shown",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_REDIS_STREAM",
        key: "store.redis_stream",
        default: "eventbus:events",
        accepts: "a Redis key (no spaces)",
        meaning: "the stream the log is on, with `CLAUDE_MPM_EVENTBUS_REDIS_URL`; cursors go in the hash `<stream>:cursors`",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_REDIS_MEMBER",
        key: "store.redis_member",
        default: "`<hostname>:<HTTP port>`",
        accepts: "a name without spaces, unique among the daemons on the stream",
        meaning: "this daemon's name on the Redis stream: its bus resumes after a restart from the cursor `bus@<member>` (every event of the stream reaches its handlers, logging and metrics once, in stream order), and it is its consumer name in `CLAUDE_MPM_RELAY_GROUP`",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER",
        key: "store.redis_claim_after",
        default: "30s",
        accepts: "duration above 0, up to 24h, with a unit (`500ms`, `30s`, `2m`)",
        meaning: "with `CLAUDE_MPM_RELAY_GROUP`: how long an event stays pending with one member (relayed, not yet acknowledged: its daemon died, say) before a live member claims it (`XAUTOCLAIM`) and relays it",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT",
        key: "daemon.shutdown_timeout",
        default: "10s",
        accepts: "duration up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "how long SIGINT/SIGTERM waits for consumers to drain their queues",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_SPOOL",
        key: "daemon.spool",
        default: "`$XDG_STATE_HOME/eventbus/spool.ndjson`, else `~/.local/state/eventbus/spool.ndjson`",
        accepts: "an absolute file path",
        meaning: "where `eventbus hook` appends events while the daemon is unreachable; the daemon takes them in at startup and every second",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_LOGGING",
        key: "logging.enabled",
        default: "true",
        accepts: BOOL,
        meaning: "the logging consumer: every event is logged through `tracing`",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_LOG_FORMAT",
        key: "logging.format",
        default: "text",
        accepts: "text or json (any case)",
        meaning: "format of the daemon's log lines on stderr",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT",
        key: "logging.rate_limit",
        default: "1000",
        accepts: "whole number 0-1000000 (N: N/s; 0: no limit), or `N/s`, `N/min`, `N/h` with an optional `burst M` (burst default: one second's worth)",
        meaning: "events of one type the logging consumer logs per second (governor GCRA, per type); the rest are counted in one summary line per type and second",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_METRICS",
        key: "metrics.enabled",
        default: "true",
        accepts: BOOL,
        meaning: "the metrics consumer: Prometheus text on `GET /metrics`",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_ENABLED",
        key: "relay.enabled",
        default: "false",
        accepts: BOOL,
        meaning: "the Socket.IO relay to the dashboard",
    },
    VarSpec {
        name: "CLAUDE_MPM_SOCKETIO_PORT",
        key: "relay.port",
        default: "8765",
        accepts: "port 1-65535",
        meaning: "dashboard server port; the relay connects to `http://localhost:<port>`",
    },
    VarSpec {
        name: "CLAUDE_MPM_SOCKETIO_URL",
        key: "relay.url",
        default: "http://localhost:<CLAUDE_MPM_SOCKETIO_PORT>",
        accepts: "an http:// or https:// URL with a host (scheme in any case)",
        meaning: "dashboard server URL; overrides the port",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_DEBUG",
        key: "relay.debug",
        default: "false",
        accepts: BOOL,
        meaning: "debug-level log lines, the relay's connection attempts and drops included",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_GROUP",
        key: "relay.group",
        default: "unset",
        accepts: "a consumer group name without spaces; needs `CLAUDE_MPM_EVENTBUS_REDIS_URL`",
        meaning: "the relays of the daemons that name the same group share the work through a Redis consumer group (`XREADGROUP`/`XACK`): each event is relayed by one of them (at least once when one fails: its pending events are claimed after `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER`). Unset: every daemon's relay relays every event of the stream",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_MAX_RETRIES",
        key: "relay.max_retries",
        default: "3",
        accepts: "whole number 0-1000",
        meaning: "reconnect attempts after a failed or lost connection, with exponential backoff (see `CLAUDE_MPM_RELAY_RETRY_DELAY`), before the relay falls back to one attempt per `CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN`; a connection that worked starts the sequence again",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_RETRY_DELAY",
        key: "relay.retry_delay",
        default: "0.5",
        accepts: "duration up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "wait before the first reconnect attempt; doubled before each further retry, capped at `CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN`, each wait ±20% random jitter (0.5s, 1s, 2s with the defaults)",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
        key: "relay.connection_cooldown",
        default: "5.0",
        accepts: "duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "wait between attempts once the retries are used up (one attempt per cooldown, ±20% jitter, until one works); also the cap on the retry waits",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_EVENT",
        key: "relay.event",
        default: "claude_event",
        accepts: "a non-empty Socket.IO event name without control characters",
        meaning: "the Socket.IO event the relay emits",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_PATTERNS",
        key: "relay.patterns",
        default: "hook.*",
        accepts: "comma-separated event-type patterns, at least one",
        meaning: "which bus events the relay forwards",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_WHERE",
        key: "relay.where",
        default: "unset (every matching event)",
        accepts: "a CEL expression over `type`, `id`, `timestamp` and `data`, such as `data.tool_name in [\"Edit\", \"Write\"]`",
        meaning: "the relay forwards only events of `CLAUDE_MPM_RELAY_PATTERNS` that this condition matches",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_BUFFER_SIZE",
        key: "relay.buffer_size",
        default: "10000",
        accepts: "whole number 1-1000000",
        meaning: "events the relay holds while the dashboard is unreachable (oldest dropped first)",
    },
    VarSpec {
        name: "CLAUDE_MPM_RELAY_RATE_LIMIT",
        key: "limits.relay_rate_limit",
        default: "unset (no limit)",
        accepts: "`N/s`, `N/min` or `N/h`, optionally `burst M` (default: one second's worth) and `delay` (default) or `drop`; 0/off for none",
        meaning: "most events per second the relay emits to the dashboard (governor GCRA): `delay` holds the rest in its buffer, `drop` drops them (counted per type); PATCH /config `relay_rate_limit` changes it",
    },
    VarSpec {
        name: "CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER",
        key: "daemon.test_slow_consumer",
        default: "unset",
        accepts: "duration up to 10s: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`)",
        meaning: "TEST ONLY: attaches a consumer `test-slow-consumer` on `*` that sleeps this long per event, to exercise draining at shutdown",
    },
];

/// The spec of a variable by its full name.
pub fn spec(name: &str) -> Option<&'static VarSpec> {
    VARS.iter().find(|v| v.name == name)
}

/// The Markdown table of [`VARS`], as the crate docs and the README show it.
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | accepts | meaning |\n|---|---|---|---|\n");
    for v in VARS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            v.name, v.default, v.accepts, v.meaning
        ));
    }
    out
}
