//! consumer-logging: work in progress (see the issue tracker).
