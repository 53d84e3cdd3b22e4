//! consumer-metrics: work in progress (see the issue tracker).
