//! Where async consumers' workers run.

use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

/// The runtime workers run on: the one given to the builder, else the caller's
/// multi-threaded runtime, else a small runtime the bus owns.
///
/// A current-thread runtime is never borrowed: its tasks only run while its owner is inside
/// `block_on`, so a worker there would stall whenever a plain thread publishes.
pub(crate) fn worker_handle(explicit: Option<&Handle>) -> Handle {
    if let Some(handle) = explicit {
        return handle.clone();
    }
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => handle,
        _ => owned().handle().clone(),
    }
}

/// The bus's own runtime: two worker threads, built on first use, shared by every bus.
pub(crate) fn owned() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("eventbus-worker")
            .enable_all()
            .build()
            .expect("the eventbus worker runtime could not start (out of threads?)")
    })
}
