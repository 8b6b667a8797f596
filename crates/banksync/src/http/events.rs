//! `GET /api/events`: the caller's live events ([`crate::events`]) as server-sent events, with keep-alive comments.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use crate::auth::CurrentUser;
use crate::events::{Event, KEEP_ALIVE};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// The caller's events as server-sent events.
///
/// The SSE event name is the event's `type` (`sync_finished`, `balances_updated`, `item_health_changed`) and its
/// `data` the JSON below; a `lagged` event (data: how many were skipped) tells a slow client to reload. The stream
/// starts with a `ready` comment and sends keep-alive comments while idle.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    operation_id = "stream_events",
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's data is one of these",
            body = Event, content_type = "text/event-stream"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn stream(
    State(state): State<AppState>,
    user: CurrentUser,
    limits: Option<axum::Extension<super::server::ServerLimits>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // Heartbeats well inside the server's idle timeout (and any proxy's), so an idle stream is never cut.
    let heartbeat = KEEP_ALIVE.min(limits.map_or(KEEP_ALIVE, |l| l.heartbeat));
    use futures::StreamExt as _;
    let events = state.events.subscribe(user.id()).map(|next| {
        Ok(match next {
            Ok(event) => SseEvent::default()
                .event(event.name())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().comment("unserializable event")),
            Err(skipped) => SseEvent::default().event("lagged").data(skipped.to_string()),
        })
    });
    let ready = futures::stream::once(async { Ok(SseEvent::default().comment("ready")) });
    Sse::new(ready.chain(events)).keep_alive(KeepAlive::new().interval(heartbeat))
}
