//! [`HubError`]: why a publish or a subscribe was refused or failed.

use std::fmt;

use tower_sse_core::{InvalidTopic, TopicName, TopicSetError};

/// Why [`Hub::publish`](crate::Hub::publish) or a subscribe failed.
///
/// The first three are the client's doing (a `400` or `403` in a server); `Log` is the
/// store's (a `503`).
#[derive(Debug)]
#[non_exhaustive]
pub enum HubError<E> {
    /// A topic name broke the hub's [`TopicRules`](tower_sse_core::TopicRules).
    InvalidTopic(InvalidTopic),
    /// No topic, or more distinct topics than [`Hub::max_topics`](crate::Hub::max_topics).
    Topics(TopicSetError),
    /// The [`Authorize`](crate::Authorize) hook denied a topic: nothing was joined or read.
    Forbidden {
        /// The first topic denied.
        topic: TopicName,
    },
    /// The log's error.
    Log(E),
}

impl<E> HubError<E> {
    /// The log's error, when that is what this is.
    pub fn log_error(&self) -> Option<&E> {
        match self {
            Self::Log(error) => Some(error),
            _ => None,
        }
    }

    /// The HTTP status a server answers with: 400, 403 or 503.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::InvalidTopic(_) | Self::Topics(_) => http::StatusCode::BAD_REQUEST,
            Self::Forbidden { .. } => http::StatusCode::FORBIDDEN,
            Self::Log(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl<E: fmt::Display> fmt::Display for HubError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidTopic(e) => fmt::Display::fmt(e, f),
            Self::Topics(e) => fmt::Display::fmt(e, f),
            // A validated name: safe to show.
            Self::Forbidden { topic } => write!(f, "access to topic {topic} is denied"),
            Self::Log(e) => write!(f, "event log: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for HubError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidTopic(e) => Some(e),
            Self::Topics(e) => Some(e),
            Self::Forbidden { .. } => None,
            Self::Log(e) => Some(e),
        }
    }
}

impl<E> From<InvalidTopic> for HubError<E> {
    fn from(error: InvalidTopic) -> Self {
        Self::InvalidTopic(error)
    }
}

impl<E> From<TopicSetError> for HubError<E> {
    fn from(error: TopicSetError) -> Self {
        Self::Topics(error)
    }
}
