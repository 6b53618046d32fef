//! The layer's gate in front of an event stream: the stream key must be a valid topic name,
//! and the [`Authorizer`] must allow it, before the layer replays anything or lets the
//! handler's first event through.
//!
//! The key is computed and the hook started when the request comes in (the hook's future is
//! `'static`, so the request head is not kept); both verdicts apply only once the handler has
//! answered with an event stream, which is then replaced by a `400` or a `403` whose body says
//! why. Other responses pass untouched, whatever their path.

use std::{future::Future, pin::Pin};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header::CONTENT_TYPE, request::Parts};
use tower_sse_core::{InvalidTopic, TopicRules, TopicSet, TopicSetError};

use crate::{Authorizer, ResponseBody, layer::Config, replay::Target};

/// The gate of a request, and what its stream is replayed from (`None` when refused): its
/// [`stream_topics`](crate::SseLayer::stream_topics) set when the layer has one, else its
/// stream key.
pub(crate) fn gate_request(config: &Config, parts: &Parts) -> (Option<Target>, Option<Access>) {
    let authorizer = config.authorizer.as_ref();
    let Some(names) = config.replay.topic_names(parts) else {
        let key = config.replay.key(parts);
        let access = gate(&key, &config.topic_rules, authorizer, parts);
        return (Some(Target::Topic(key)), access);
    };
    let set = match topic_set(&names, &config.topic_rules, config.replay.max_topics) {
        Ok(set) => set,
        Err(refusal) => return (None, Some(refusal)),
    };
    let access = authorizer.map(|authorizer| {
        // Every hook started now (the futures do not borrow the request), awaited in order.
        let checks: Vec<_> = set
            .names()
            .iter()
            .map(|topic| authorizer.start(parts, topic))
            .collect();
        Access::Check(Box::pin(async move {
            for check in checks {
                if !check.await {
                    return false;
                }
            }
            true
        }))
    });
    let target = match set.names() {
        [one] => Target::Topic(one.to_string()),
        _ => Target::Set(set),
    };
    (Some(target), access)
}

/// The validated set of `names`: at most `max` distinct, and at most four times as many names
/// (duplicates included), as the hub allows.
fn topic_set(names: &[String], rules: &TopicRules, max: usize) -> Result<TopicSet, Access> {
    let max_names = max.saturating_mul(4).max(64);
    if names.len() > max_names {
        return Err(Access::InvalidSet(TopicSetError::TooManyNames {
            max: max_names,
        }));
    }
    let topics = names
        .iter()
        .map(|name| rules.validate(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Access::Invalid)?;
    TopicSet::new(topics, max).map_err(Access::InvalidSet)
}

/// The verdict under way for one request.
pub(crate) enum Access {
    /// The stream key is not a valid topic name: never read, never shown.
    Invalid(InvalidTopic),
    /// The stream's topics are no valid set (none, or too many).
    InvalidSet(TopicSetError),
    /// The hook's answer, awaited once the response is known to be an event stream.
    Check(Pin<Box<dyn Future<Output = bool> + Send>>),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => f.debug_tuple("Invalid").field(e).finish(),
            Self::InvalidSet(e) => f.debug_tuple("InvalidSet").field(e).finish(),
            Self::Check(_) => f.write_str("Check"),
        }
    }
}

/// The gate of a request whose stream key is `key`: `None` when there is nothing to check.
pub(crate) fn gate(
    key: &str,
    rules: &TopicRules,
    authorizer: Option<&Authorizer>,
    parts: &Parts,
) -> Option<Access> {
    match rules.validate(key) {
        Err(error) => Some(Access::Invalid(error)),
        Ok(topic) => authorizer.map(|authorizer| Access::Check(authorizer.start(parts, &topic))),
    }
}

/// The response that replaces a refused event stream.
pub(crate) fn refusal<B>(status: StatusCode, message: String) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::rejected(Bytes::from(message)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The `400` for an invalid stream key (the message names the rule, not the key).
pub(crate) fn invalid<B>(error: InvalidTopic) -> Response<ResponseBody<B>> {
    refusal(
        StatusCode::BAD_REQUEST,
        format!("invalid stream topic: {error}\n"),
    )
}

/// The `400` for a stream whose topics are no valid set.
pub(crate) fn invalid_set<B>(error: TopicSetError) -> Response<ResponseBody<B>> {
    refusal(
        StatusCode::BAD_REQUEST,
        format!("invalid stream topics: {error}\n"),
    )
}

/// The `403` for a denied stream.
pub(crate) fn forbidden<B>() -> Response<ResponseBody<B>> {
    refusal(
        StatusCode::FORBIDDEN,
        "access to this event stream is denied\n".to_owned(),
    )
}
