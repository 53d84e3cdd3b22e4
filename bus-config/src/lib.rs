//! `bus-config`: the composition root of eventbus. It reads the configuration from
//! `CLAUDE_MPM_*` environment variables, validates it into typed settings (each consumer's
//! section is that consumer crate's own settings type), builds the
//! [`EventBus`](bus_core::EventBus) and wires its consumers (logging, metrics, the Socket.IO
//! relay). It reads the environment and nothing else; the `eventbus` daemon, its HTTP API and
//! its client live in `bus-daemon`.
//!
//! Every value is read as text through `envy` and checked here, so a bad value names the full
//! variable, the value and what is accepted, and *all* bad variables are reported at once:
//!
//! ```
//! use bus_config::{Config, ConfigError};
//!
//! let env = |pairs: &[(&str, &str)]| {
//!     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
//! };
//! let config = Config::from_iter(env(&[
//!     ("CLAUDE_MPM_EVENTBUS_ENABLED", "Yes"),
//!     ("CLAUDE_MPM_EVENTBUS_FILTERS", " hook.* , ,session.start "),
//! ]))?;
//! assert!(config.bus.enabled);
//! assert_eq!(config.bus.filters, ["hook.*", "session.start"]);
//! assert_eq!(config.http.addr.to_string(), "127.0.0.1:8770");
//!
//! // The bus settings apply whatever else is enabled.
//! let bus = config.build_bus()?;
//! assert!(!bus.publish("other.event", serde_json::json!({})));
//!
//! let err = Config::from_iter(env(&[
//!     ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "lots"),
//!     ("CLAUDE_MPM_RELAY_RETRY_DELAY", "-1"),
//! ]))
//! .unwrap_err();
//! let ConfigError::Invalid { errors } = &err else { panic!("{err}") };
//! assert_eq!(errors.len(), 2);
//! assert!(err.to_string().contains("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE=\"lots\": expected a whole number"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Environment variables
//!
//! Booleans accept `true/false`, `1/0`, `yes/no`, `on/off` in any case; lists are split on
//! commas, trimmed, and empty items dropped; numbers and durations are range-checked. An
//! empty value is a bad value (except for lists, where it means an empty list). Unknown
//! `CLAUDE_MPM_EVENTBUS_*`, `CLAUDE_MPM_RELAY_*` and `CLAUDE_MPM_SOCKETIO_*` variables are
//! reported as warnings (likely typos). The bus settings apply whether or not the relay is on.
//!
//! | variable | default | accepts | meaning |
//! |---|---|---|---|
//! | `CLAUDE_MPM_EVENTBUS_ENABLED` | true | true/false, 1/0, yes/no, on/off (any case) | bus on/off; while off, publishes are refused (nothing counted or recorded) |
//! | `CLAUDE_MPM_EVENTBUS_DEBUG` | false | true/false, 1/0, yes/no, on/off (any case) | debug logging: the log level becomes `debug` and every accepted event is logged |
//! | `CLAUDE_MPM_EVENTBUS_HISTORY_SIZE` | 100 | whole number 0-100000 (0 turns history off) | how many recent events the bus keeps in memory (`history_size` in `GET /stats`); `GET /events/recent` reads the durable log |
//! | `CLAUDE_MPM_EVENTBUS_HISTORY_MAX_BYTES` | 67108864 | whole number of bytes 0-1099511627776 (0: no byte bound) | the most event data the in-memory history holds (JSON text size); past it the oldest events go first |
//! | `CLAUDE_MPM_EVENTBUS_FILTERS` | empty (allow all) | comma-separated event-type patterns (`hook.*`, `a?c`, exact names), at most 1000; empty or unset allows all (commas with no pattern, such as `,,`, are refused) | allow-list: when set, only matching events are accepted |
//! | `CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY` | 10000 | whole number 1-10000000 | events each consumer's queue holds before the overflow policy applies |
//! | `CLAUDE_MPM_EVENTBUS_OVERFLOW` | drop_newest | drop_newest, drop_oldest or block (any case, `-` or `_`) | what a full consumer queue does with a new event |
//! | `CLAUDE_MPM_EVENTBUS_PRIORITIES` | empty (every event normal) | comma-separated `pattern=priority` rules (priority: high, normal or low), first match wins, such as `hook.error*=high,hook.subagent_stop=high,hook.pre_tool=low` | event priorities in every consumer's queue and the relay's send buffer: high goes first, low last but with 1 event in 8 while it waits; a full queue drops the lowest first. An event's own `"priority"` (POST /events) wins |
//! | `CLAUDE_MPM_EVENTBUS_FILTER_WHERE` | unset (no condition) | a CEL expression over `type`, `id`, `timestamp` and `data`, such as `data.tool_name != "Read"` | the allow-list gains a condition: only events it matches are accepted (checked after `CLAUDE_MPM_EVENTBUS_FILTERS`; an event it cannot be evaluated on is filtered and counted) |
//! | `CLAUDE_MPM_EVENTBUS_SCHEMAS` | unset (no validation) | path to a JSON file: `{"pattern": schema or {"$ref": "relative/path.json"}, ...}` (JSON Schema 2020-12 or a draft the schema declares; local `$ref`s only) | events are checked against the schema of every pattern matching their type before they are published; reloaded by `PATCH /config` `{"reload_schemas": true}` and SIGHUP |
//! | `CLAUDE_MPM_EVENTBUS_SCHEMA_MODE` | reject | reject or warn | what an invalid event gets: `reject` refuses it (422 naming each broken rule), `warn` accepts it, counts and logs it |
//! | `CLAUDE_MPM_EVENTBUS_HTTP_ADDR` | 127.0.0.1:8770 | IP:PORT (`[::1]:8770` for IPv6) | where the daemon listens, and where `eventbus publish` sends |
//! | `CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES` | 16777216 | whole number of bytes 1-1073741824 | largest request body `POST /events` and `PATCH /config` accept (413 above it) |
//! | `CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES` | 67108864 | whole number of bytes 1-1099511627776 (never below MAX_BODY_BYTES) | request bodies the daemon reads and parses at once; a body that does not fit now gets 503 with Retry-After |
//! | `CLAUDE_MPM_EVENTBUS_TOKEN` | unset | any non-empty text without whitespace | when set, every route but `GET /healthz` and `GET /metrics` needs `Authorization: Bearer <token>` (reads too: they show event payloads); required on a non-loopback address |
//! | `CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS` | empty (only the daemon's own origin) | comma-separated origins such as `http://localhost:3000` (scheme, host and port) | web pages allowed to call the API: a request with any other `Origin` header (`null` included) gets 403. Requests without `Origin` (curl, hooks, `eventbus publish`) are not affected |
//! | `CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS` | empty (the bound address and loopback names) | comma-separated host names or `host:port` (any case) | `Host` headers accepted besides the bound address and `localhost`/`127.0.0.1`/`[::1]` with its port; any other gets 421 (against DNS rebinding) |
//! | `CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT` | 60s | duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | a connection with no request in progress and no bytes received for this long is closed (keep-alive idle time) |
//! | `CLAUDE_MPM_EVENTBUS_HEADER_TIMEOUT` | 10s | duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | a request's headers must arrive whole within this time of its first byte, or the connection is closed |
//! | `CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT` | 30s | duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | a request body that sends nothing for this long is abandoned (408) and its connection closed |
//! | `CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS` | 1000 (lowered to the file limit less 64 when that is smaller) | whole number 1-1000000 | open connections the daemon keeps; at the limit it closes the longest-idle connection to take a new one (logged as a warning), and stops accepting while every connection is busy |
//! | `CLAUDE_MPM_EVENTBUS_STORE` | `$XDG_STATE_HOME/eventbus/events.db` (`~/.local/state/eventbus/events.db`) | a file path, or `memory` | the durable event log (SQLite, WAL): `POST /events` answers 2xx once the events are committed there; ids come from it and survive restarts. `memory` keeps the log in memory (lost on exit) |
//! | `CLAUDE_MPM_EVENTBUS_STORE_SYNC` | full | full, normal or off (any case) | when a commit is on disk: `full` fsyncs before answering (nothing acknowledged is lost, even on power loss); `normal` survives a daemon crash but may lose the last commits on an OS crash or power loss; `off` may lose more, and corrupt the file, on an OS crash |
//! | `CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS` | 1000000 | whole number 1-1000000000 | the log keeps at most this many events; older ones are trimmed (counted in `GET /stats`) |
//! | `CLAUDE_MPM_EVENTBUS_RETENTION_AGE` | 7d | duration above 0, up to 3650d, with a unit (`12h`, `7d`) | the log trims events older than this |
//! | `CLAUDE_MPM_EVENTBUS_REDIS_URL` | unset | `redis://[user:password@]host[:port][/db]`, or `rediss://...` (TLS) | puts the log on a Redis stream (Redis 7+) instead of `CLAUDE_MPM_EVENTBUS_STORE`: every daemon on the same stream delivers every event, whichever daemon it was posted to, in stream order; `POST /events` answers 2xx only once Redis has the events, 503 naming the cause while it is unreachable. The password is masked wherever the URL is shown |
//! | `CLAUDE_MPM_EVENTBUS_REDIS_STREAM` | eventbus:events | a Redis key (no spaces) | the stream the log is on, with `CLAUDE_MPM_EVENTBUS_REDIS_URL`; cursors go in the hash `<stream>:cursors` |
//! | `CLAUDE_MPM_EVENTBUS_REDIS_MEMBER` | `<hostname>:<HTTP port>` | a name without spaces, unique among the daemons on the stream | this daemon's name on the Redis stream: its bus resumes after a restart from the cursor `bus@<member>` (every event of the stream reaches its handlers, logging and metrics once, in stream order), and it is its consumer name in `CLAUDE_MPM_RELAY_GROUP` |
//! | `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER` | 30s | duration above 0, up to 24h, with a unit (`500ms`, `30s`, `2m`) | with `CLAUDE_MPM_RELAY_GROUP`: how long an event stays pending with one member (relayed, not yet acknowledged: its daemon died, say) before a live member claims it (`XAUTOCLAIM`) and relays it |
//! | `CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT` | 10s | duration up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | how long SIGINT/SIGTERM waits for consumers to drain their queues |
//! | `CLAUDE_MPM_EVENTBUS_SPOOL` | `$XDG_STATE_HOME/eventbus/spool.ndjson`, else `~/.local/state/eventbus/spool.ndjson` | an absolute file path | where `eventbus hook` appends events while the daemon is unreachable; the daemon takes them in at startup and every second |
//! | `CLAUDE_MPM_EVENTBUS_LOGGING` | true | true/false, 1/0, yes/no, on/off (any case) | the logging consumer: every event is logged through `tracing` |
//! | `CLAUDE_MPM_EVENTBUS_LOG_FORMAT` | text | text or json (any case) | format of the daemon's log lines on stderr |
//! | `CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT` | 1000 | whole number 0-1000000 (N: N/s; 0: no limit), or `N/s`, `N/min`, `N/h` with an optional `burst M` (burst default: one second's worth) | events of one type the logging consumer logs per second (governor GCRA, per type); the rest are counted in one summary line per type and second |
//! | `CLAUDE_MPM_EVENTBUS_METRICS` | true | true/false, 1/0, yes/no, on/off (any case) | the metrics consumer: Prometheus text on `GET /metrics` |
//! | `CLAUDE_MPM_RELAY_ENABLED` | false | true/false, 1/0, yes/no, on/off (any case) | the Socket.IO relay to the dashboard |
//! | `CLAUDE_MPM_SOCKETIO_PORT` | 8765 | port 1-65535 | dashboard server port; the relay connects to `http://localhost:<port>` |
//! | `CLAUDE_MPM_SOCKETIO_URL` | http://localhost:<CLAUDE_MPM_SOCKETIO_PORT> | an http:// or https:// URL with a host (scheme in any case) | dashboard server URL; overrides the port |
//! | `CLAUDE_MPM_RELAY_DEBUG` | false | true/false, 1/0, yes/no, on/off (any case) | debug-level log lines, the relay's connection attempts and drops included |
//! | `CLAUDE_MPM_RELAY_GROUP` | unset | a consumer group name without spaces; needs `CLAUDE_MPM_EVENTBUS_REDIS_URL` | the relays of the daemons that name the same group share the work through a Redis consumer group (`XREADGROUP`/`XACK`): each event is relayed by one of them (at least once when one fails: its pending events are claimed after `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER`). Unset: every daemon's relay relays every event of the stream |
//! | `CLAUDE_MPM_RELAY_MAX_RETRIES` | 3 | whole number 0-1000 | reconnect attempts after a failed or lost connection, with exponential backoff (see `CLAUDE_MPM_RELAY_RETRY_DELAY`), before the relay falls back to one attempt per `CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN`; a connection that worked starts the sequence again |
//! | `CLAUDE_MPM_RELAY_RETRY_DELAY` | 0.5 | duration up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | wait before the first reconnect attempt; doubled before each further retry, capped at `CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN`, each wait ±20% random jitter (0.5s, 1s, 2s with the defaults) |
//! | `CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN` | 5.0 | duration above 0, up to 1h: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | wait between attempts once the retries are used up (one attempt per cooldown, ±20% jitter, until one works); also the cap on the retry waits |
//! | `CLAUDE_MPM_RELAY_EVENT` | claude_event | a non-empty Socket.IO event name without control characters | the Socket.IO event the relay emits |
//! | `CLAUDE_MPM_RELAY_PATTERNS` | hook.* | comma-separated event-type patterns, at least one | which bus events the relay forwards |
//! | `CLAUDE_MPM_RELAY_WHERE` | unset (every matching event) | a CEL expression over `type`, `id`, `timestamp` and `data`, such as `data.tool_name in ["Edit", "Write"]` | the relay forwards only events of `CLAUDE_MPM_RELAY_PATTERNS` that this condition matches |
//! | `CLAUDE_MPM_RELAY_BUFFER_SIZE` | 10000 | whole number 1-1000000 | events the relay holds while the dashboard is unreachable (oldest dropped first) |
//! | `CLAUDE_MPM_RELAY_RATE_LIMIT` | unset (no limit) | `N/s`, `N/min` or `N/h`, optionally `burst M` (default: one second's worth) and `delay` (default) or `drop`; 0/off for none | most events per second the relay emits to the dashboard (governor GCRA): `delay` holds the rest in its buffer, `drop` drops them (counted per type); PATCH /config `relay_rate_limit` changes it |
//! | `CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER` | unset | duration up to 10s: seconds (`0.5`) or with a unit (`500ms`, `2s`, `1m`) | TEST ONLY: attaches a consumer `test-slow-consumer` on `*` that sleeps this long per event, to exercise draining at shutdown |
//!
#![forbid(unsafe_code)]

mod config;
mod error;
mod parse;
pub mod rules;
mod runtime;
mod runtime_limits;
mod vars;
pub mod wiring;

pub use config::{
    BusSettings, ClientSettings, Config, DEFAULT_HTTP_ADDR, DEFAULT_REDIS_STREAM, DaemonSettings,
    HttpSettings, LimitSettings, LoggingSettings, MetricsSettings, RedisSettings, RedisUrl,
    RelaySettings, RulesSettings, Secret, StoreLocation, StoreSettings, default_store_path,
    parse_addr, parse_rate_limit,
};
pub use error::{ConfigError, VarError, WiringError};
pub use parse::boolean as parse_bool;
pub use parse::duration as parse_duration;
pub use runtime::{
    CurrentSettings, DebugSwitch, MAX_HISTORY_SIZE, MAX_PATTERNS, RuntimeSettings, current,
};
pub use runtime_limits::{LOG_RATE_KEY, RELAY_RATE_KEY, current_with_consumers};
pub use vars::{PREFIX, VARS, VarSpec, markdown_table, spec};

#[cfg(test)]
mod doc_tests {
    #[test]
    fn the_crate_docs_table_is_the_variable_table() {
        let docs: String = include_str!("lib.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! "))
            .filter(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            docs,
            crate::markdown_table(),
            "regenerate the table in lib.rs from vars.rs"
        );
    }
}
