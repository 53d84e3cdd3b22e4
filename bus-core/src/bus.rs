//! The [`EventBus`] handle itself; its methods live in the modules named after their job
//! (`builder`, `publish`, `subscribe`, `admin`, `lifecycle`).

use std::sync::{Arc, Weak};

use crate::registry::Inner;

/// An in-process publish/subscribe event bus.
///
/// Cheap to clone (clones share one bus); every method takes `&self` and may be called from
/// any thread, from inside any tokio runtime, and from inside a handler.
#[derive(Clone)]
pub struct EventBus {
    pub(crate) inner: Arc<Inner>,
}

/// A handle that does not keep the bus alive; for handlers that publish back into their own
/// bus without forming a reference cycle.
#[derive(Clone)]
pub struct WeakEventBus(Weak<Inner>);

impl WeakEventBus {
    /// The bus, if it still exists.
    pub fn upgrade(&self) -> Option<EventBus> {
        self.0.upgrade().map(|inner| EventBus { inner })
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("uid", &self.inner.uid)
            .finish_non_exhaustive()
    }
}

impl EventBus {
    /// A handle that does not keep the bus alive.
    pub fn downgrade(&self) -> WeakEventBus {
        WeakEventBus(Arc::downgrade(&self.inner))
    }
}
