//! End-to-end tests across the eventbus crates live in `tests/`.
