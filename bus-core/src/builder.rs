//! How a bus comes into being: [`EventBusBuilder`], the defaults and the global bus.

use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;

use crate::content::{Condition, Gates, Validator};
use crate::registry::Inner;
use crate::subscription::QueueOptions;
use crate::{BusError, EventBus, IdOrder, Overflow, Pattern};

/// Builds an [`EventBus`] with non-default settings.
#[derive(Clone)]
pub struct EventBusBuilder {
    history_size: usize,
    history_max_bytes: usize,
    enabled: bool,
    filters: Vec<String>,
    gates: Gates,
    queue: QueueOptions,
    runtime: Option<Handle>,
    id_order: IdOrder,
}

impl Default for EventBusBuilder {
    fn default() -> Self {
        EventBusBuilder {
            history_size: 100,
            history_max_bytes: 0,
            enabled: true,
            filters: Vec::new(),
            gates: Gates::default(),
            queue: QueueOptions::new(10_000, Overflow::DropNewest),
            runtime: None,
            id_order: IdOrder::Accepted,
        }
    }
}

impl EventBusBuilder {
    /// How many recent events to keep (default 100; 0 turns history off).
    pub fn history_size(mut self, n: usize) -> Self {
        self.history_size = n;
        self
    }

    /// Bounds the history by bytes as well as by count (default 0: by count only); see
    /// [`EventBus::set_history_max_bytes`].
    pub fn history_max_bytes(mut self, bytes: usize) -> Self {
        self.history_max_bytes = bytes;
        self
    }

    /// Whether the bus starts enabled (default true).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Allow-list of event-type patterns (default empty: allow all).
    pub fn filters<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.filters = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Checks every published event's payload first ([`Validator`]); a refused one is not
    /// dispatched and `try_publish` answers [`Refusal::Invalid`](crate::Refusal::Invalid).
    pub fn validator(mut self, validator: Arc<dyn Validator>) -> Self {
        self.gates.validator = Some(validator);
        self
    }

    /// A condition the allow-list adds: an event whose type the filters allow is accepted
    /// only when `condition` matches it too (otherwise counted in `events_filtered`).
    pub fn filter_where(mut self, condition: Arc<dyn Condition>) -> Self {
        self.gates.filter_where = Some(condition);
        self
    }

    /// Default queue capacity of async subscribers (default 10,000).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue.capacity = n;
        self
    }

    /// Default overflow policy of async subscribers (default [`Overflow::DropNewest`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.queue.overflow = overflow;
        self
    }

    /// Default priority rules of every async consumer's queue (default none: every event
    /// `normal` unless its publisher says otherwise). A consumer's own rules replace them.
    pub fn priorities(mut self, rules: crate::PriorityRules) -> Self {
        self.queue.priorities = (!rules.is_empty()).then_some(rules);
        self
    }

    /// How the bus numbers the events it creates (default [`IdOrder::Accepted`]: one
    /// bus-wide counter, ids in acceptance order). [`IdOrder::PerThread`] lets publishers on
    /// several threads scale with cores, at the price of a global id order; see there.
    pub fn id_order(mut self, order: IdOrder) -> Self {
        self.id_order = order;
        self
    }

    /// Runs async subscribers' workers on this runtime instead of finding one.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Builds the bus; fails on a bad filter pattern or a zero queue capacity.
    pub fn build(self) -> Result<EventBus, BusError> {
        if self.queue.capacity == 0 {
            return Err(BusError::ZeroCapacity {
                name: "the bus default".into(),
            });
        }
        // The clock's one-off calibration, here rather than in the first publish.
        crate::clock::warm_up();
        let filters = self
            .filters
            .iter()
            .map(|p| Pattern::new(p))
            .collect::<Result<Vec<_>, _>>()?;
        let inner = Inner::new(
            self.history_size,
            self.enabled,
            filters,
            self.gates,
            self.queue,
            self.runtime,
            self.id_order,
        );
        let bus = EventBus {
            inner: Arc::new(inner),
        };
        bus.set_history_max_bytes(self.history_max_bytes);
        Ok(bus)
    }
}

impl std::fmt::Debug for EventBusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBusBuilder")
            .field("history_size", &self.history_size)
            .field("enabled", &self.enabled)
            .field("filters", &self.filters)
            .field("validator", &self.gates.validator.is_some())
            .field("filter_where", &self.gates.filter_where)
            .field("queue", &self.queue)
            .field("runtime", &self.runtime)
            .field("id_order", &self.id_order)
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    /// A bus with the defaults: enabled, history of 100, no filters.
    pub fn new() -> Self {
        EventBusBuilder::default()
            .build()
            .expect("the default settings are valid")
    }

    /// Starts a builder.
    pub fn builder() -> EventBusBuilder {
        EventBusBuilder::default()
    }

    /// The process-wide shared bus, built with the defaults on first use.
    pub fn global() -> &'static EventBus {
        static GLOBAL: OnceLock<EventBus> = OnceLock::new();
        GLOBAL.get_or_init(EventBus::new)
    }
}
