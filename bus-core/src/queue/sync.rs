//! What the queue's wake-up protocol is built from: its lock, its atomics and fences, its
//! condition variable and its notifiers. Normally the real ones; with the `loom` feature,
//! loom's model-checked stand-ins, so that the protocol's model tests (in `loom_model`) run
//! the queue's own code rather than a copy of it.

#[cfg(not(feature = "loom"))]
pub(crate) use real::*;

#[cfg(feature = "loom")]
pub(crate) use model::*;

#[cfg(not(feature = "loom"))]
mod real {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
    pub(crate) use std::sync::{Condvar, Mutex};
    pub(crate) use tokio::sync::Notify;

    /// A spin lock that yields: publishers take it on every push, and its release is a
    /// plain store where a `std` mutex's is an atomic swap, which stalls the publisher
    /// whenever the worker touched the lock last.
    pub(crate) type SpinLock<T> = spin::mutex::SpinMutex<T, spin::relax::Yield>;

    /// The lock held.
    pub(crate) type SpinGuard<'a, T> = spin::mutex::SpinMutexGuard<'a, T>;

    /// Takes the lock.
    pub(crate) fn lock<T>(lock: &SpinLock<T>) -> SpinGuard<'_, T> {
        lock.lock()
    }

    tokio::task_local! {
        /// The queue whose worker is running the current task, so that a handler publishing
        /// into its own full `Block` queue gets a counted drop instead of a deadlock.
        static CURRENT_QUEUE: usize;
    }

    /// Runs `work` as the worker of the queue `key`.
    pub(crate) async fn as_worker_of<F: std::future::Future>(key: usize, work: F) -> F::Output {
        CURRENT_QUEUE.scope(key, work).await
    }

    /// True inside the worker of the queue `key` (a handler of that queue is publishing).
    pub(crate) fn runs_in_worker_of(key: usize) -> bool {
        CURRENT_QUEUE.try_with(|k| *k == key).unwrap_or(false)
    }
}

#[cfg(feature = "loom")]
mod model {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
    pub(crate) use loom::sync::{Condvar, Mutex};

    /// The spin lock's stand-in: loom explores who gets a lock first, not how long a spin
    /// lasts.
    pub(crate) type SpinLock<T> = loom::sync::Mutex<T>;

    /// The lock held.
    pub(crate) type SpinGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    /// Takes the lock.
    pub(crate) fn lock<T>(lock: &SpinLock<T>) -> SpinGuard<'_, T> {
        lock.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    loom::thread_local! {
        /// The task-local of the real build, per loom thread: loom's threads share one OS
        /// thread, and a task-local's value would leak from the worker to the publisher.
        static CURRENT_QUEUE: std::cell::Cell<Option<usize>> = std::cell::Cell::new(None);
    }

    /// Runs `work` as the worker of the queue `key` (on this loom thread, for good).
    pub(crate) async fn as_worker_of<F: Future>(key: usize, work: F) -> F::Output {
        CURRENT_QUEUE.with(|current| current.set(Some(key)));
        work.await
    }

    /// True inside the worker of the queue `key`.
    pub(crate) fn runs_in_worker_of(key: usize) -> bool {
        CURRENT_QUEUE.with(|current| current.get() == Some(key))
    }

    /// `tokio::sync::Notify` as the queue uses it, on a loom mutex: `notify_one` wakes the
    /// oldest registered waiter or leaves one permit; `notify_waiters` wakes every waiter
    /// registered before it and leaves no permit; a `Notified` registers when enabled or
    /// first polled.
    #[derive(Default)]
    pub(crate) struct Notify {
        state: loom::sync::Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        permit: bool,
        next_id: u64,
        waiters: Vec<Waiter>,
    }

    struct Waiter {
        id: u64,
        woken: bool,
        waker: Option<Waker>,
    }

    impl Notify {
        /// A notifier with no permit and no waiter.
        pub(crate) fn new() -> Self {
            Self::default()
        }

        fn state(&self) -> loom::sync::MutexGuard<'_, State> {
            self.state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// Wakes the oldest waiter not yet woken, or stores a permit.
        pub(crate) fn notify_one(&self) {
            let mut state = self.state();
            match state.waiters.iter_mut().find(|w| !w.woken) {
                Some(waiter) => {
                    waiter.woken = true;
                    if let Some(waker) = waiter.waker.take() {
                        waker.wake();
                    }
                }
                None => state.permit = true,
            }
        }

        /// Wakes every registered waiter.
        pub(crate) fn notify_waiters(&self) {
            for waiter in self.state().waiters.iter_mut().filter(|w| !w.woken) {
                waiter.woken = true;
                if let Some(waker) = waiter.waker.take() {
                    waker.wake();
                }
            }
        }

        /// A future that completes once notified.
        pub(crate) fn notified(&self) -> Notified<'_> {
            Notified {
                notify: self,
                id: None,
                done: false,
            }
        }
    }

    /// The future of [`Notify::notified`].
    pub(crate) struct Notified<'a> {
        notify: &'a Notify,
        /// Set once registered.
        id: Option<u64>,
        done: bool,
    }

    impl Notified<'_> {
        /// Registers now, so that a `notify_waiters` from here on wakes this future.
        pub(crate) fn enable(self: Pin<&mut Self>) {
            let this = self.get_mut();
            this.register(None);
        }

        /// True if it took the stored permit instead of registering.
        fn register(&mut self, waker: Option<Waker>) -> bool {
            if self.id.is_some() {
                return false;
            }
            let mut state = self.notify.state();
            if std::mem::take(&mut state.permit) {
                self.done = true;
                return true;
            }
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.push(Waiter {
                id,
                woken: false,
                waker,
            });
            self.id = Some(id);
            false
        }
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = self.get_mut();
            if this.done || this.register(Some(cx.waker().clone())) {
                return Poll::Ready(());
            }
            let id = this.id.expect("registered above");
            let mut state = this.notify.state();
            let at = state
                .waiters
                .iter()
                .position(|w| w.id == id)
                .expect("a waiter leaves the list only here or when dropped");
            if state.waiters[at].woken {
                state.waiters.remove(at);
                this.done = true;
                return Poll::Ready(());
            }
            state.waiters[at].waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    impl Drop for Notified<'_> {
        fn drop(&mut self) {
            if let (Some(id), false) = (self.id, self.done) {
                self.notify.state().waiters.retain(|w| w.id != id);
            }
        }
    }
}
