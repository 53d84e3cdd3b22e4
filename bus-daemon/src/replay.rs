//! `POST /events/replay`: republishes stored events to the live consumers, one page per
//! request, each marked as a replay ([`Event::is_replay`](bus_core::Event::is_replay)) and
//! carrying its original id and timestamp; nothing is stored again.
//!
//! The query is `GET /events`'s (`after`, `since`, `pattern`, `limit`), plus `dry_run=true`
//! to count without publishing. The answer is `{"replayed": N, "next": ID or null,
//! "dry_run": bool}`: pass `next` back as `after` for the following page, as
//! `eventbus replay` does.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::{ApiError, AppState};
use crate::read::{EventsQuery, read_page};

/// `POST /events/replay`.
pub(crate) async fn replay_events(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let dry_run = match raw.get("dry_run").map(|v| bus_config::parse_bool(v)) {
        None => false,
        Some(Ok(b)) => b,
        Some(Err(expected)) => {
            return Err(ApiError::bad_request(format!(
                "query parameter dry_run: expected {expected}"
            )));
        }
    };
    if !raw.contains_key("after") && !raw.contains_key("since") {
        return Err(ApiError::bad_request(
            "say where to start: after=ID or since=TIME (such as since=10m)",
        ));
    }
    let log = state.ingest.log().clone();
    let query = EventsQuery::parse(log.as_ref(), &raw)?;
    let page = read_page(log.as_ref(), &query).await?;
    let mut replayed = 0u64;
    for stored in &page.events {
        if !dry_run {
            let event = stored
                .to_event()
                .map_err(|e| {
                    ApiError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("stored event {} is not JSON: {e}", log.format_id(stored.id)),
                    )
                })?
                .into_replay();
            if state.ingest.republish(event).await.is_err() {
                continue; // filtered or disabled now: not replayed, not counted
            }
        }
        replayed += 1;
    }
    Ok(axum::Json(json!({
        "replayed": replayed,
        "next": page.next.map(|n| log.format_id(n)),
        "dry_run": dry_run,
    }))
    .into_response())
}
