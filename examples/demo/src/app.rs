//! What every framework's server shares: the hub, the ticker, publishing and the page.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{StatusCode, request::Parts};
use tower_sse::{Hub, HubError as Refused, ShutdownSignal, Subscription};
use tower_sse_core::{Event, LoggedEvent, MemoryLog};
use tower_sse_redis::RedisLog;

/// The topic `/events` serves and `/publish` and the ticker write to.
pub(crate) const TOPIC: &str = "demo";

/// The page at `GET /`.
pub(crate) const INDEX_HTML: &str = include_str!("index.html");

/// The demo's hub over either log; the framework servers only see this type.
#[derive(Clone, Debug)]
pub(crate) enum DemoHub {
    Memory(Hub<MemoryLog>),
    /// Over Redis with a live tail, so several demo servers share one history.
    Redis(Hub<RedisLog>),
}

/// A hub's refusal or failure as the status and message a server answers with.
fn refusal<E: std::fmt::Display>(error: &Refused<E>) -> (StatusCode, String) {
    (error.status(), error.to_string())
}

/// The log failed; the message names the store.
#[derive(Debug)]
pub(crate) struct HubError(String);

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HubError {}

impl DemoHub {
    pub(crate) async fn publish(
        &self,
        topic: &str,
        event: &Event<'_>,
    ) -> Result<LoggedEvent, HubError> {
        match self {
            Self::Memory(hub) => hub
                .publish(topic, event)
                .await
                .map_err(|e| HubError(e.to_string())),
            Self::Redis(hub) => hub
                .publish(topic, event)
                .await
                .map_err(|e| HubError(e.to_string())),
        }
    }

    /// Subscribes the client of `request` to `topics` (validated, at most 32, authorized).
    pub(crate) async fn subscribe_request(
        &self,
        request: &Parts,
        topics: &[String],
        cursor: Option<&str>,
    ) -> Result<Subscription, (StatusCode, String)> {
        let topics = topics.iter().map(String::as_str);
        match self {
            Self::Memory(hub) => hub
                .subscribe_request(request, topics, cursor)
                .await
                .map_err(|e| refusal(&e)),
            Self::Redis(hub) => hub
                .subscribe_request(request, topics, cursor)
                .await
                .map_err(|e| refusal(&e)),
        }
    }

    /// Whether the client of `request` may publish to `topic`: a valid name (400) it may
    /// read (403).
    pub(crate) async fn check_publish(
        &self,
        request: &Parts,
        topic: &str,
    ) -> Result<(), (StatusCode, String)> {
        let (topic, allowed) = match self {
            Self::Memory(hub) => {
                let topic = hub.topic(topic).map_err(|e| refusal(&e))?;
                let allowed = hub.allows(request, &topic).await;
                (topic, allowed)
            }
            Self::Redis(hub) => {
                let topic = hub.topic(topic).map_err(|e| refusal(&e))?;
                let allowed = hub.allows(request, &topic).await;
                (topic, allowed)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err((
                StatusCode::FORBIDDEN,
                format!("access to topic {topic} is denied"),
            ))
        }
    }
}

/// Why a publish failed: the client's input (400) or the store (503).
#[derive(Debug)]
pub(crate) struct PublishError {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl From<String> for PublishError {
    fn from(message: String) -> Self {
        Self {
            status: 400,
            message,
        }
    }
}

/// Publishes `body` to `topic` (already validated and authorized) as the data of an event of
/// type `event` (from the raw query string of `POST /publish`); the new event's id as
/// `{"id":"..."}`, or a message for a 400.
pub(crate) async fn publish_to(
    hub: &DemoHub,
    topic: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<String, PublishError> {
    let event_type = match query_param(query.unwrap_or(""), "event") {
        Some(Ok(value)) => Some(value),
        Some(Err(())) => return Err("the event type is not valid UTF-8\n".to_owned().into()),
        None => None,
    };
    let data = std::str::from_utf8(body).map_err(|_| "the body is not valid UTF-8\n".to_owned())?;
    let mut event = Event::new().data(data);
    if let Some(event_type) = event_type.as_deref().filter(|t| !t.is_empty()) {
        event = event
            .event(event_type)
            .map_err(|e| PublishError::from(format!("bad event type: {e}\n")))?;
    }
    match hub.publish(topic, &event).await {
        Ok(logged) => Ok(serde_json::json!({ "id": logged.id() }).to_string()),
        Err(e) => Err(PublishError {
            status: 503,
            message: format!("the log refused the event: {e}\n"),
        }),
    }
}

/// The percent-decoded value of `name` in `query`: `Err` when it is not UTF-8.
fn query_param(query: &str, name: &str) -> Option<Result<String, ()>> {
    query_params(query, name, 1).pop()
}

/// The percent-decoded values of `name` in `query`, the first `max` of them; `Err` for one
/// that is not UTF-8.
pub(crate) fn query_params(query: &str, name: &str, max: usize) -> Vec<Result<String, ()>> {
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
        .take(max)
        .map(percent_decode)
        .collect()
}

fn percent_decode(value: &str) -> Result<String, ()> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Publishes a `tick` event every `every` until shutdown.
pub(crate) fn spawn_ticker(hub: DemoHub, every: Duration, shutdown: ShutdownSignal) {
    tokio::spawn(async move {
        let stop = shutdown.triggered();
        tokio::pin!(stop);
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for n in 1u64.. {
            tokio::select! {
                _ = &mut stop => return,
                _ = interval.tick() => {}
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let data = serde_json::json!({ "n": n, "unix_ms": now }).to_string();
            let event = Event::new()
                .event("tick")
                .expect("no line break")
                .data(data);
            if let Err(e) = hub.publish(TOPIC, &event).await {
                eprintln!("ticker: {e}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(query_param("event=a%20b", "event"), Some(Ok("a b".into())));
        assert_eq!(
            query_param("x=1&event=a%0Ab", "event"),
            Some(Ok("a\nb".into()))
        );
        assert_eq!(query_param("event=%ff", "event"), Some(Err(())));
        assert_eq!(query_param("event=5%", "event"), Some(Ok("5%".into())));
        assert_eq!(query_param("x=1", "event"), None);
    }

    #[tokio::test]
    async fn bad_input_is_refused() {
        let hub = DemoHub::Memory(Hub::new());
        assert!(
            publish_to(&hub, TOPIC, Some("event=a%0Db"), b"x")
                .await
                .is_err()
        );
        assert!(
            publish_to(&hub, TOPIC, Some("event=a%00b"), b"x")
                .await
                .is_err()
        );
        assert!(publish_to(&hub, TOPIC, None, b"\xff").await.is_err());
        let ok = publish_to(&hub, TOPIC, Some("event=note"), b"two\nlines")
            .await
            .unwrap();
        assert!(ok.starts_with(r#"{"id":""#), "{ok}");
    }
}
