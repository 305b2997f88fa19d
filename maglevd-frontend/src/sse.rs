//! `/view/api/events`: the server-sent event stream.
//!
//! A stream starts with a `retry:` hint, then the replay for the browser's `Last-Event-ID`
//! (or a `resync` event when the gap cannot be filled), then live events, each written and
//! flushed as it comes. A `: ping` comment goes out every ping period, and a stream that falls
//! too far behind gets a `resync` instead of what it missed. The stream's task ends when the
//! browser goes away (the next write fails).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::http::{AppState, sse_headers};
use crate::hub::Hub;
use crate::ring::{Replay, StoredEvent};

/// The reconnect delay browsers are told, milliseconds.
pub const RETRY_MS: u64 = 2000;

/// How many written chunks may wait for a slow browser.
const CHUNKS: usize = 64;

/// One event in SSE framing.
#[must_use]
pub fn frame(epoch: u64, event: &StoredEvent) -> Bytes {
    Bytes::from(format!(
        "id: {epoch}-{}\nevent: {}\ndata: {}\n\n",
        event.seq, event.kind, event.data
    ))
}

/// The `resync` event: refetch everything; `id` is the newest id, so a browser that refetched
/// is in sync as of it.
#[must_use]
pub fn resync_frame(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: resync\ndata: {{}}\n\n"))
}

/// The handler.
pub async fn events(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS);
    tokio::spawn(pump(app.hub.clone(), last_id, app.ping, tx));
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>));
    let mut response = (sse_headers(), body).into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("keep-alive"),
    );
    response
}

/// Writes one browser's stream until it goes away.
pub async fn pump(
    hub: Hub,
    last_id: Option<String>,
    ping: std::time::Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let epoch = hub.epoch();
    let mut sub = hub.subscribe(last_id.as_deref());
    if tx
        .send(Bytes::from(format!("retry: {RETRY_MS}\n\n")))
        .await
        .is_err()
    {
        return;
    }
    let mut sent = 0u64;
    match sub.replay {
        Replay::Fresh => {}
        Replay::Resync => {
            if tx.send(resync_frame(&sub.latest_id)).await.is_err() {
                return;
            }
            sent = seq_of(&sub.latest_id);
        }
        Replay::Events(events) => {
            for event in events {
                sent = event.seq;
                if tx.send(frame(epoch, &event)).await.is_err() {
                    return;
                }
            }
        }
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    let closed = hub.closed();
    tokio::pin!(closed);
    loop {
        let chunk = tokio::select! {
            () = &mut closed => return,
            received = sub.live.recv() => match received {
                Ok(event) if event.seq <= sent => continue,
                Ok(event) => {
                    sent = event.seq;
                    frame(epoch, &event)
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let id = hub.latest_id();
                    sent = seq_of(&id);
                    resync_frame(&id)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick() => Bytes::from_static(b": ping\n\n"),
        };
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}

fn seq_of(id: &str) -> u64 {
    id.rsplit_once('-')
        .and_then(|(_, seq)| seq.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_are_sse() {
        let event = StoredEvent {
            seq: 7,
            at: Duration::ZERO,
            kind: "backend",
            data: "{\"a\":1}".into(),
        };
        assert_eq!(
            frame(3, &event),
            Bytes::from_static(b"id: 3-7\nevent: backend\ndata: {\"a\":1}\n\n")
        );
        assert_eq!(
            resync_frame("3-9"),
            Bytes::from_static(b"id: 3-9\nevent: resync\ndata: {}\n\n")
        );
        assert_eq!(seq_of("3-9"), 9);
        assert_eq!(seq_of("junk"), 0);
    }
}
