//! The contract of `EventLog`, run against every backend (the cases are shared with
//! bus-redis, whose tests run them against Redis).

mod common;

include!("contract/cases.rs");
include!("contract/render_cases.rs");
