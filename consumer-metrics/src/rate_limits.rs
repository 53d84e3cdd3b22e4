//! The rate-limited subscriptions' families: configured and current rate (gauges), events
//! delayed and dropped by the limit (counters: the limit's counts are never reset, so they
//! never go backwards).

use bus_core::BusStats;

use crate::exposition::{write_header, write_sample};
use crate::names::Described;

const CONFIGURED: Described = (
    "eventbus_subscriber_rate_limit_per_second",
    "A rate-limited subscription's configured rate, events per second.",
);
const CURRENT: Described = (
    "eventbus_subscriber_rate_per_second",
    "Events per second a rate-limited subscription's limit let through over the last full second.",
);
const DELAYED: Described = (
    "eventbus_subscriber_rate_delayed_total",
    "Events a rate-limited subscription (policy delay) had to wait for.",
);
const LIMIT_DROPPED: Described = (
    "eventbus_subscriber_rate_dropped_total",
    "Events a rate-limited subscription (policy drop) dropped for being over its rate.",
);

/// Writes the four families for the subscriptions that have a rate limit (nothing when none).
pub(crate) fn render(out: &mut String, stats: &BusStats) {
    let limited: Vec<_> = stats
        .subscribers
        .iter()
        .filter_map(|s| s.rate_limit.as_ref().map(|r| (s, r)))
        .collect();
    if limited.is_empty() {
        return;
    }
    type Pick = fn(&bus_core::RateLimitStats) -> f64;
    let families: [(Described, &str, Pick); 4] = [
        (CONFIGURED, "gauge", |r| r.configured_per_second),
        (CURRENT, "gauge", |r| r.current_per_second),
        (DELAYED, "counter", |r| r.delayed as f64),
        (LIMIT_DROPPED, "counter", |r| r.dropped as f64),
    ];
    for (described, kind, pick) in families {
        write_header(out, described, kind);
        for (sub, rate) in &limited {
            let id = sub.id.to_string();
            let labels = [
                ("subscriber", sub.name.as_str()),
                ("subscription", id.as_str()),
            ];
            write_sample(out, described.0, &labels, pick(rate));
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use bus_core::{Event, EventBus, Overflow, QueueOptions};

    #[test]
    fn limited_subscriptions_get_their_families() {
        let bus = EventBus::new();
        let mut out = String::new();
        super::render(&mut out, &bus.stats());
        assert!(out.is_empty(), "no limit, no families");
        bus.on_async_with(
            "*",
            QueueOptions::new(10, Overflow::DropNewest)
                .with_rate_limit("5/s drop".parse().unwrap()),
            |_e: Event| async {},
        )
        .unwrap();
        super::render(&mut out, &bus.stats());
        assert!(
            out.contains("# TYPE eventbus_subscriber_rate_limit_per_second gauge"),
            "{out}"
        );
        assert!(out.contains("eventbus_subscriber_rate_limit_per_second{subscriber=\"async#1\",subscription=\"1\"} 5\n"), "{out}");
        assert!(
            out.contains("eventbus_subscriber_rate_dropped_total{"),
            "{out}"
        );
    }
}
