//! bus-store's `EventLog` contract, run against the Redis backend (a real redis-server per
//! test; see `common`).

mod common;

include!("../../bus-store/tests/contract/cases.rs");
include!("../../bus-store/tests/contract/render_cases.rs");
