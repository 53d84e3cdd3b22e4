//! The daemon's lifecycle: check, bind, build and wire the bus, serve, drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bus_core::{BusStats, EventBus, ShutdownReport};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::durable::{Followers, with_durable_consumers};
use crate::error::ServeError;
use crate::http::{AppState, router};
use crate::ingest::Ingest;
use bus_config::DebugSwitch;
use bus_config::wiring::{Wired, wire};
use bus_config::{Config, StoreLocation, StoreSettings, WiringError};
use bus_store::{EventLog, MemoryLog, SqliteLog, SqliteOptions, StoreError};

/// How long open HTTP connections get to finish after the shutdown signal.
const HTTP_GRACE: Duration = Duration::from_secs(5);

/// A daemon that has bound its address and wired its bus, ready to [`run`](Daemon::run).
pub struct Daemon {
    listener: TcpListener,
    addr: SocketAddr,
    bus: EventBus,
    state: AppState,
    wired: Wired,
    followers: Followers,
    /// With a shared log (Redis): what dispatches the log's events to the bus.
    feed: Option<bus_store::LogFeed>,
    shutdown_timeout: Duration,
    closing: tokio::sync::watch::Sender<bool>,
    limits: crate::limits::Limits,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("addr", &self.addr)
            .field("consumers", &self.wired.names())
            .finish_non_exhaustive()
    }
}

/// What happened at shutdown.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// What the consumers could not deliver.
    pub report: ShutdownReport,
    /// The bus's counters after the drain.
    pub stats: BusStats,
    /// Each consumer's own figures after the drain, under its `GET /stats` key (the relay's
    /// `"relay"`: relayed, buffered, dropped from its buffer, ...).
    pub consumer_stats: Vec<(String, serde_json::Value)>,
}

impl Daemon {
    /// Checks the address policy, binds, builds the bus from `config` and wires its consumers.
    ///
    /// Must run inside a multi-threaded tokio runtime (consumer workers run on it).
    pub async fn start(config: &Config) -> Result<Daemon, ServeError> {
        let addr = config.http.addr;
        if !addr.ip().is_loopback() && config.http.token.is_none() {
            return Err(ServeError::NonLoopbackWithoutToken { addr });
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bus = config
            .bus_builder()
            .runtime(tokio::runtime::Handle::current())
            .build()
            .map_err(|e| WiringError {
                what: "the event bus",
                reason: e.to_string(),
            })?;
        let log = open_store(&config.store).await?;
        let debug = DebugSwitch::new(config.bus.debug);
        let mut ingest = Ingest::new(
            &bus,
            log,
            debug.clone(),
            config.bus.overflow == bus_core::Overflow::Block,
        );
        if config.store.redis.is_some() {
            ingest = ingest.shared();
        }
        let wired = wire(&bus, &with_durable_consumers(config))?;
        let member = config
            .store
            .redis
            .as_ref()
            .map(|redis| crate::shared::member_name(redis, addr));
        let group = crate::shared::group_setup(config, member.as_deref())?;
        let followers = Followers::start(
            ingest.log(),
            &wired.consumers,
            member.as_deref(),
            group.as_ref(),
        )
        .await?;
        // Started once the consumers are wired, so that they get the first event it feeds.
        let feed = match &member {
            Some(member) => Some(crate::shared::start_feed(&ingest, member).await?),
            None => None,
        };
        let spool = crate::spool::Intake::start(&ingest, config.daemon.spool.as_deref());
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let state = AppState {
            closing: closing_rx,
            ingest,
            debug,
            token: config.http.token.clone(),
            max_body_bytes: config.http.max_body_bytes,
            body_timeout: config.http.body_timeout,
            body_budget: crate::budget::BodyBudget::new(
                config.http.body_budget_bytes,
                config.http.max_body_bytes,
            ),
            browser: crate::guard::BrowserRules::new(
                addr,
                &config.http.allowed_origins,
                &config.http.allowed_hosts,
            ),
            consumers: crate::shared::with_feed(
                feed.as_ref(),
                followers.with(spool.with(wired.consumers.clone())),
            )
            .into(),
            sessions: crate::ui::Sessions::new(addr.port()),
            streams: Default::default(),
            rules: wired.rules.clone(),
        };
        crate::rules::reload_on_hangup(&bus, wired.rules.as_ref());
        Ok(Daemon {
            listener,
            addr,
            bus,
            state,
            wired,
            followers,
            feed,
            shutdown_timeout: config.daemon.shutdown_timeout,
            closing,
            limits: crate::limits::Limits {
                idle: config.http.idle_timeout,
                header: config.http.header_timeout,
                max_connections: crate::limits::connection_cap(config.http.max_connections),
            },
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bus the daemon publishes to.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// One line per consumer wired to the bus, such as `socketio-relay (http://localhost:8765)`.
    pub fn consumers(&self) -> Vec<String> {
        self.wired.names()
    }

    /// Consumers on by default that this build left out.
    pub fn warnings(&self) -> &[String] {
        &self.wired.warnings
    }

    /// Serves until `shutdown` completes, then stops accepting connections, gives open ones
    /// a few seconds, and drains the consumers within the configured shutdown timeout.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Outcome, ServeError> {
        let closing = self.closing;
        let signalled = Arc::new(Notify::new());
        let notify = signalled.clone();
        let log = self.state.ingest.log().clone();
        let consumers = self.state.consumers.clone();
        let server =
            crate::limits::serve(self.listener, router(self.state), self.limits, async move {
                shutdown.await;
                // Open event streams end now, so that their connections can close.
                closing.send_replace(true);
                notify.notify_one();
            });
        let grace_over = async {
            signalled.notified().await;
            tokio::time::sleep(HTTP_GRACE).await;
        };
        tokio::select! {
            () = server => {}
            () = grace_over => {
                tracing::warn!("HTTP connections still open {HTTP_GRACE:?} after the shutdown signal; closing them");
            }
        }
        // What the shared log holds reaches the bus before the bus drains (a share of the
        // time, so the consumers keep the rest).
        if let Some(feed) = self.feed {
            let report = feed.stop(self.shutdown_timeout / 2).await;
            if report.behind > 0 {
                tracing::warn!(
                    behind = report.behind,
                    "the bus feed stopped before the end of the stream; the rest is dispatched on the next start"
                );
            }
        }
        // The followers' last cursor saves happen before the log is closed.
        let (mut report, durable) = tokio::join!(
            self.bus.shutdown(self.shutdown_timeout),
            self.followers.stop(self.shutdown_timeout)
        );
        Followers::add_to(&mut report, durable);
        if let Err(e) = log.close().await {
            tracing::warn!("closing the event log: {e}");
        }
        Ok(Outcome {
            report,
            stats: self.bus.stats(),
            consumer_stats: consumers
                .iter()
                .filter_map(|c| c.stats())
                .map(|(key, figures)| (key.to_owned(), figures))
                .collect(),
        })
    }
}

/// Opens the event log the settings name: a Redis stream when `CLAUDE_MPM_EVENTBUS_REDIS_URL`
/// is set, else a SQLite file (created with its directory when missing; refused, untouched,
/// when it is not an eventbus store) or memory.
pub async fn open_store(settings: &StoreSettings) -> Result<Arc<dyn EventLog>, ServeError> {
    if let Some(redis) = &settings.redis {
        let options = bus_redis::RedisOptions {
            url: redis.url.expose().to_owned(),
            stream: redis.stream.clone(),
            retention: settings.retention,
        };
        // `url` displays masked: the password never reaches the logs.
        tracing::info!(url = %redis.url, stream = %redis.stream, "the event log is on Redis");
        return match bus_redis::RedisLog::open(options).await {
            Ok(log) => Ok(Arc::new(log)),
            Err(source) => Err(ServeError::Redis {
                url: redis.url.masked(),
                stream: redis.stream.clone(),
                source,
            }),
        };
    }
    match &settings.location {
        StoreLocation::Memory => Ok(Arc::new(MemoryLog::new(settings.retention))),
        StoreLocation::File(path) => {
            let path = path.clone();
            let options = SqliteOptions {
                durability: settings.durability,
                retention: settings.retention,
                ..SqliteOptions::default()
            };
            let opened = {
                let path = path.clone();
                // Opening checks the file's integrity: seconds for a large store.
                tokio::task::spawn_blocking(move || SqliteLog::open(&path, options)).await
            };
            match opened {
                Ok(Ok(log)) => Ok(Arc::new(log)),
                Ok(Err(source)) => Err(ServeError::Store { path, source }),
                Err(join) => Err(ServeError::Store {
                    path,
                    source: StoreError::unavailable(join),
                }),
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM (Ctrl-C only, off Unix). The handlers are installed when
/// this is called, not when the future is first polled: call it before [`Daemon::start`], so
/// a signal that arrives while the daemon starts (once its port is bound) stops it cleanly
/// instead of killing it. Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match signals {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
