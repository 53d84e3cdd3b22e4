//! bus-config: work in progress (see the issue tracker).
