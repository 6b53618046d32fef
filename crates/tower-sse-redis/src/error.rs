//! [`RedisLogError`]: what can go wrong talking to Redis, naming the server.

use std::fmt;

/// An error of [`RedisLog`](crate::RedisLog): connecting, a command, or the configuration.
///
/// Every variant names the server's URL (with any password masked), and keeps the client's
/// error as its [`source`](std::error::Error::source).
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisLogError {
    /// The URL is not one the client understands (`redis://`, `rediss://`, `unix://`...).
    InvalidUrl {
        /// The URL as given, password masked.
        url: String,
        /// Why the client rejected it.
        source: redis::RedisError,
    },
    /// The server could not be reached, or did not answer, at start-up.
    Connect {
        /// The server's URL, password masked.
        url: String,
        /// The connection error.
        source: redis::RedisError,
    },
    /// A command failed: the server went away, timed out, or refused it.
    Command {
        /// The server's URL, password masked.
        url: String,
        /// What was being done, such as `append to "tower-sse:chat"`.
        operation: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// The server answered something this crate does not understand: a key that is not a
    /// stream, or a server older than Redis 7.0.
    UnexpectedReply {
        /// The server's URL, password masked.
        url: String,
        /// What was being done.
        operation: String,
        /// What was wrong with the reply.
        detail: String,
    },
    /// The topic name breaks the log's [`TopicRules`](tower_sse_core::TopicRules): it never
    /// became a Redis key. The message does not repeat the name.
    InvalidTopic {
        /// What is wrong with the name.
        source: tower_sse_core::InvalidTopic,
    },
    /// The retention asks for a limit that Redis Streams cannot enforce (a byte limit).
    UnsupportedRetention {
        /// The limit, such as `max_bytes`.
        limit: &'static str,
    },
}

impl fmt::Display for RedisLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, .. } => write!(f, "invalid redis url `{url}`"),
            Self::Connect { url, .. } => write!(f, "could not connect to redis at {url}"),
            Self::Command { url, operation, .. } => {
                write!(f, "redis at {url}: {operation} failed")
            }
            Self::UnexpectedReply {
                url,
                operation,
                detail,
            } => write!(
                f,
                "redis at {url}: unexpected reply to {operation}: {detail}"
            ),
            Self::InvalidTopic { source } => write!(f, "redis log: {source}"),
            Self::UnsupportedRetention { limit } => write!(
                f,
                "redis streams cannot enforce retention `{limit}`: use max_events or max_age"
            ),
        }
    }
}

impl std::error::Error for RedisLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidUrl { source, .. }
            | Self::Connect { source, .. }
            | Self::Command { source, .. } => Some(source),
            Self::InvalidTopic { source } => Some(source),
            Self::UnexpectedReply { .. } | Self::UnsupportedRetention { .. } => None,
        }
    }
}

impl RedisLogError {
    /// Whether the error is about reaching the server (refused, reset, timed out), which
    /// retrying later may cure, rather than about a reply or the configuration.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Command { source, .. } => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_timeout()
            }
            _ => false,
        }
    }
}

/// `url` with the password of its user info, if any, replaced by `***`, for error messages.
pub(crate) fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user_info = &rest[..at];
    let masked = match user_info.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => user_info.to_owned(),
    };
    format!("{scheme}://{masked}{}", &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_the_password() {
        assert_eq!(
            mask_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            mask_password("redis://:hunter2@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            mask_password("rediss://me:p@ss@host/1?x=@"),
            "rediss://me:***@host/1?x=@"
        );
        assert_eq!(mask_password("redis://me@host"), "redis://me@host");
        assert_eq!(mask_password("not a url"), "not a url");
    }
}
