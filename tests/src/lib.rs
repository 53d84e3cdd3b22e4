//! End-to-end tests across the eventbus crates. They live in `tests/` and run with
//! `cargo test -p eventbus-tests` (or `cargo test --workspace`): the bus configured from a list
//! of environment variables by `bus-config`, with logging, metrics and the Socket.IO relay
//! wired, against a real in-process Socket.IO server (socketioxide).
