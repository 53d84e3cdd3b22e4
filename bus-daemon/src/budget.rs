//! The body budget: how many bytes of request bodies the daemon reads and parses at once.
//!
//! Each body is limited on its own (`CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES`, 413 above it), but
//! many concurrent large bodies together could still take the daemon's memory: 32 bodies of
//! 16 MiB once peaked at 593 MB. So a request with a body first reserves its size (its
//! `Content-Length`, or the per-body maximum when the length is not announced) from one
//! budget, `CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES`, and holds it while the body is read,
//! parsed and committed. A request that does not fit now gets `503 Service Unavailable` with
//! `Retry-After: 1`, before a byte of its body is read; nothing of it is published.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::http::ApiError;

/// The budget is counted in units of this many bytes (a semaphore permit each).
const UNIT: usize = 1024;

/// Bytes of request bodies in flight at once.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_bytes: usize,
    max_body_bytes: usize,
}

impl BodyBudget {
    /// A budget of `total_bytes`, never below one largest body (`max_body_bytes`), so that
    /// every acceptable body can be read when the daemon is otherwise idle.
    pub fn new(total_bytes: usize, max_body_bytes: usize) -> Self {
        let total_bytes = total_bytes.max(max_body_bytes);
        let units = u32::try_from(total_bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        BodyBudget {
            units: Arc::new(Semaphore::new(units as usize)),
            total_bytes,
            max_body_bytes,
        }
    }

    /// The budget in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Bytes reserved by requests being read or parsed now.
    pub fn in_use_bytes(&self) -> usize {
        let total_units = self.total_bytes.div_ceil(UNIT);
        total_units.saturating_sub(self.units.available_permits()) * UNIT
    }
}

/// The middleware: reserves a body's size from the budget for as long as the request runs.
pub(crate) async fn body_budget(
    State(budget): State<BodyBudget>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let bytes = match announced {
        Some(0) => return next.run(request).await,
        // Over the per-body limit: the body limit answers 413 without reading it.
        Some(n) if n > budget.max_body_bytes => return next.run(request).await,
        Some(n) => n,
        None => budget.max_body_bytes,
    };
    let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
    let Ok(_reserved) = budget.units.clone().try_acquire_many_owned(units) else {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the daemon is reading {} MiB of request bodies already, and this one ({} bytes{}) does not fit in CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES={}; nothing was published: retry in a moment",
                budget.in_use_bytes() >> 20,
                bytes,
                if announced.is_none() {
                    ", counted at the largest body since it has no Content-Length"
                } else {
                    ""
                },
                budget.total_bytes,
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_never_below_one_largest_body() {
        let budget = BodyBudget::new(1000, 1 << 20);
        assert_eq!(budget.total_bytes(), 1 << 20);
        assert_eq!(budget.in_use_bytes(), 0);
        let budget = BodyBudget::new(64 << 20, 16 << 20);
        assert_eq!(budget.total_bytes(), 64 << 20);
    }
}
