//! The demo's topics: `GET /events?topic=A&topic=B`, `POST /publish?topic=A`, and
//! `--auth-token` for `private/` topics, shared by the three framework servers.
//!
//! Each server hands over the request head ([`Parts`]); everything else is here and in the
//! hub: names are validated by the hub's rules (400), at most 32 distinct topics (400),
//! `private/` topics need the token (403) as `Authorization: Bearer TOKEN` or
//! `?access_token=TOKEN` (an `EventSource` cannot set headers).

use http::{HeaderMap, Method, StatusCode, Uri, request::Parts};
use tower_sse::{Authorizer, Subscription};
use tower_sse_core::TopicName;

use crate::app::{self, DemoHub, PublishError};

/// Topics whose name starts with this need `--auth-token`.
pub(crate) const PRIVATE_PREFIX: &str = "private/";

/// The most `topic` parameters read from one query, duplicates included: bounded work.
const MAX_TOPIC_PARAMS: usize = 256;

/// A refused request: its status and a one-line message.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<PublishError> for Refusal {
    fn from(error: PublishError) -> Self {
        Self {
            status: StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            message: error.message,
        }
    }
}

/// The hook behind `--auth-token`: `private/` topics need the token; without a token they
/// are refused altogether. Other topics are public.
pub(crate) fn authorizer(token: Option<String>) -> Authorizer {
    Authorizer::new(move |request: &Parts, topic: &TopicName| {
        let allowed = !topic.starts_with(PRIVATE_PREFIX)
            || token
                .as_deref()
                .is_some_and(|token| presents(request, token));
        async move { allowed }
    })
}

/// Whether the request carries `token` as a bearer token or as `?access_token=`.
fn presents(request: &Parts, token: &str) -> bool {
    let bearer = request
        .headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.strip_prefix("Bearer "))
        .any(|value| constant_time_eq(value.trim().as_bytes(), token.as_bytes()));
    bearer
        || app::query_params(request.uri.query().unwrap_or(""), "access_token", 4)
            .into_iter()
            .flatten()
            .any(|value| constant_time_eq(value.as_bytes(), token.as_bytes()))
}

/// Compares without stopping at the first difference, so the time taken tells nothing of how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request head a framework hands over, as `http` parts.
pub(crate) fn head(method: Method, uri: Uri, headers: HeaderMap) -> Parts {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.headers = headers;
    parts
}

/// The `topic` parameters of `query`: `demo` when there is none.
///
/// # Errors
///
/// A 400 when a value is not UTF-8 after percent-decoding.
fn requested_topics(query: Option<&str>) -> Result<Vec<String>, Refusal> {
    let values = app::query_params(query.unwrap_or(""), "topic", MAX_TOPIC_PARAMS);
    if values.is_empty() {
        return Ok(vec![app::TOPIC.to_owned()]);
    }
    values
        .into_iter()
        .map(|value| value.map_err(|()| Refusal::bad_request("a topic is not valid UTF-8\n")))
        .collect()
}

/// `GET /events?topic=...`: the subscription, or why not.
pub(crate) async fn subscribe(
    hub: &DemoHub,
    request: &Parts,
    cursor: Option<&str>,
) -> Result<Subscription, Refusal> {
    let topics = requested_topics(request.uri.query())?;
    hub.subscribe_request(request, &topics, cursor)
        .await
        .map_err(|(status, message)| Refusal {
            status,
            message: format!("{message}\n"),
        })
}

/// `POST /publish?topic=A&event=TYPE`: `{"id":"..."}`, or why not.
pub(crate) async fn publish(
    hub: &DemoHub,
    request: &Parts,
    body: &[u8],
) -> Result<String, Refusal> {
    let query = request.uri.query();
    let topic = match app::query_params(query.unwrap_or(""), "topic", 1).pop() {
        None => app::TOPIC.to_owned(),
        Some(Ok(topic)) => topic,
        Some(Err(())) => return Err(Refusal::bad_request("the topic is not valid UTF-8\n")),
    };
    let (status, message) = match hub.check_publish(request, &topic).await {
        Ok(()) => return Ok(app::publish_to(hub, &topic, query, body).await?),
        Err(refusal) => refusal,
    };
    Err(Refusal {
        status,
        message: format!("{message}\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sse::Hub;

    fn request(uri: &str, bearer: Option<&str>) -> Parts {
        let mut headers = HeaderMap::new();
        if let Some(token) = bearer {
            headers.insert(
                http::header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        head(Method::GET, uri.parse().unwrap(), headers)
    }

    fn hub(token: Option<&str>) -> DemoHub {
        DemoHub::Memory(Hub::new().authorize(authorizer(token.map(str::to_owned))))
    }

    #[tokio::test]
    async fn names_counts_and_tokens() {
        let hub = hub(Some("s3cret"));
        for (uri, status) in [
            ("/events?topic=", 400),
            ("/events?topic=a%20b", 400),
            ("/events?topic=%ff", 400),
            ("/events?topic=a&topic=private/x", 403),
            ("/events?topic=private/x&access_token=wrong", 403),
        ] {
            let refusal = subscribe(&hub, &request(uri, None), None)
                .await
                .unwrap_err();
            assert_eq!(refusal.status, status, "{uri}: {}", refusal.message);
        }
        let many: String = (0..33).map(|i| format!("topic=t{i}&")).collect();
        let refusal = subscribe(&hub, &request(&format!("/events?{many}"), None), None)
            .await
            .unwrap_err();
        assert_eq!(refusal.status, 400);
        assert!(refusal.message.contains("32"), "{}", refusal.message);

        for uri in [
            "/events",
            "/events?topic=a&topic=b",
            "/events?topic=private/x&access_token=s3cret",
        ] {
            assert!(
                subscribe(&hub, &request(uri, None), None).await.is_ok(),
                "{uri}"
            );
        }
        let bearer = request("/events?topic=private/x", Some("s3cret"));
        assert!(subscribe(&hub, &bearer, None).await.is_ok());

        let publish_to = |uri: &'static str, bearer| {
            let hub = hub.clone();
            async move { publish(&hub, &request(uri, bearer), b"x").await }
        };
        assert_eq!(
            publish_to("/publish?topic=a%0Ab", None)
                .await
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            publish_to("/publish?topic=private/x", None)
                .await
                .unwrap_err()
                .status,
            403
        );
        assert!(
            publish_to("/publish?topic=private/x", Some("s3cret"))
                .await
                .is_ok()
        );
        assert!(
            publish_to("/publish?topic=chat&event=note", None)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn without_a_token_private_topics_are_refused() {
        let hub = hub(None);
        let refusal = subscribe(
            &hub,
            &request("/events?topic=private/x&access_token=", None),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(refusal.status, 403);
    }
}
