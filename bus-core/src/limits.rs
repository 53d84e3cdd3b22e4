//! Changing a running consumer's rate limit (the daemon's `PATCH /config`).

use crate::subscription::Delivery;
use crate::{BusError, EventBus, RateLimit, SubscriptionId};

impl EventBus {
    /// Sets, changes or (with `None`) removes the rate limit of the queued subscription `id`,
    /// effective from the next event its worker takes. A new limit starts with a full burst.
    pub fn set_rate_limit(
        &self,
        id: SubscriptionId,
        limit: Option<RateLimit>,
    ) -> Result<(), BusError> {
        let reg = self.inner.lock();
        let sub = reg
            .subs
            .iter()
            .find(|s| s.id == id.0)
            .ok_or_else(|| BusError::NoSuchSubscription(id.to_string()))?;
        match &sub.delivery {
            Delivery::Queued { queue, .. } => {
                queue.gate.set(limit);
                Ok(())
            }
            Delivery::Sync(_) => Err(BusError::NoSuchSubscription(format!(
                "{id} with a queue (sync handlers run on the publisher's thread and have no rate limit)"
            ))),
        }
    }

    /// [`set_rate_limit`](Self::set_rate_limit) for every queued subscription named `name`
    /// (a [`Subscriber`](crate::Subscriber)'s own name); returns how many there were.
    pub fn set_rate_limit_by_name(
        &self,
        name: &str,
        limit: Option<RateLimit>,
    ) -> Result<usize, BusError> {
        let reg = self.inner.lock();
        let mut changed = 0;
        for sub in reg.subs.iter().filter(|s| &*s.name == name) {
            if let Delivery::Queued { queue, .. } = &sub.delivery {
                queue.gate.set(limit);
                changed += 1;
            }
        }
        if changed == 0 {
            return Err(BusError::NoSuchSubscription(format!("named {name:?}")));
        }
        Ok(changed)
    }

    /// The rate limit of the queued subscription `id`, if it has one.
    pub fn rate_limit(&self, id: SubscriptionId) -> Option<RateLimit> {
        let reg = self.inner.lock();
        let sub = reg.subs.iter().find(|s| s.id == id.0)?;
        match &sub.delivery {
            Delivery::Queued { queue, .. } => queue.gate.limit(),
            Delivery::Sync(_) => None,
        }
    }
}
