//! [`TopicName`]: a validated topic name, and the [`TopicRules`] it is checked against.
//!
//! A topic name comes from the network (a query parameter, a path) and becomes a log key (a
//! Redis stream key, a map key). Every entry point of the crates — the hub's publish and
//! subscribe, the layer's stream key, the adapters — validates it first, with the same rules:
//! by default 1 to [`DEFAULT_MAX_TOPIC_LEN`] bytes of `A-Z a-z 0-9 . _ ~ / -`. An invalid name
//! is an [`InvalidTopic`] error whose message never repeats the name, so that hostile input
//! reaches neither a store nor a log line.
//!
//! # Example
//!
//! ```
//! use tower_sse_core::{InvalidTopic, TopicName, TopicRules};
//!
//! let topic = TopicName::new("chat/room-1")?;
//! assert_eq!(topic.as_str(), "chat/room-1");
//!
//! assert_eq!(TopicName::new(""), Err(InvalidTopic::Empty));
//! assert!(matches!(TopicName::new("a b"), Err(InvalidTopic::ForbiddenByte { at: 1 })));
//!
//! // Stricter rules: short names, no slash.
//! let rules = TopicRules::new().max_len(8).allowed(|b| b.is_ascii_alphanumeric());
//! assert!(rules.validate("chat/1").is_err());
//! # Ok::<(), InvalidTopic>(())
//! ```

use std::{borrow::Borrow, fmt, ops::Deref, sync::Arc};

/// The default longest topic name, in bytes.
pub const DEFAULT_MAX_TOPIC_LEN: usize = 128;

/// Whether `byte` may appear in a topic name by default: `A-Z a-z 0-9 . _ ~ / -`.
///
/// These are URL-safe (RFC 3986 unreserved characters and `/`), so a topic name travels in a
/// query string or a path without escaping, and contain nothing a store or a log could
/// misread (no space, no control character, no `:`).
pub fn default_topic_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'~' | b'/' | b'-')
}

/// A topic name that passed [`TopicRules`]; cheap to clone (an `Arc` inside).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Validates `name` with the default rules ([`TopicRules::new`]).
    ///
    /// # Errors
    ///
    /// [`InvalidTopic`] when the name is empty, too long or holds a byte outside
    /// `A-Z a-z 0-9 . _ ~ / -`.
    pub fn new(name: &str) -> Result<Self, InvalidTopic> {
        TopicRules::new().validate(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a shared string.
    pub fn as_shared(&self) -> &Arc<str> {
        &self.0
    }
}

impl Deref for TopicName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a topic name was refused. The message says what is wrong, never what the name was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidTopic {
    /// The name is empty.
    Empty,
    /// The name is longer than the limit.
    TooLong {
        /// The limit in bytes.
        max_len: usize,
    },
    /// The name holds a byte the rules do not allow.
    ForbiddenByte {
        /// The byte offset of the first such byte.
        at: usize,
    },
}

impl fmt::Display for InvalidTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("topic name is empty"),
            Self::TooLong { max_len } => write!(f, "topic name is longer than {max_len} bytes"),
            Self::ForbiddenByte { at } => write!(
                f,
                "topic name has a forbidden character at byte {at} (allowed: A-Z a-z 0-9 . _ ~ / -)"
            ),
        }
    }
}

impl std::error::Error for InvalidTopic {}

/// The rules a topic name must follow: a length limit and the bytes allowed.
///
/// The default is 1 to [`DEFAULT_MAX_TOPIC_LEN`] bytes of [`default_topic_byte`]. Whatever the
/// configuration, a name is never empty and never holds a byte outside visible ASCII
/// (`!`..=`~`), so it can always be written in a header, a log line or a store key as is.
#[derive(Clone, Copy)]
#[must_use]
pub struct TopicRules {
    max_len: usize,
    allowed: fn(u8) -> bool,
}

impl Default for TopicRules {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TopicRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicRules")
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl TopicRules {
    /// The default rules.
    pub fn new() -> Self {
        Self {
            max_len: DEFAULT_MAX_TOPIC_LEN,
            allowed: default_topic_byte,
        }
    }

    /// Sets the longest name, in bytes (at least 1).
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes.max(1);
        self
    }

    /// Sets which bytes a name may hold; bytes outside visible ASCII are refused whatever
    /// `allowed` says.
    pub fn allowed(mut self, allowed: fn(u8) -> bool) -> Self {
        self.allowed = allowed;
        self
    }

    /// The longest name, in bytes.
    pub fn max_length(&self) -> usize {
        self.max_len
    }

    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`InvalidTopic`] saying what is wrong, without the name.
    pub fn validate(&self, name: &str) -> Result<TopicName, InvalidTopic> {
        self.check(name.as_bytes())?;
        Ok(TopicName(Arc::from(name)))
    }

    /// Checks `name` without building a [`TopicName`].
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn check(&self, name: &[u8]) -> Result<(), InvalidTopic> {
        if name.is_empty() {
            return Err(InvalidTopic::Empty);
        }
        if name.len() > self.max_len {
            return Err(InvalidTopic::TooLong {
                max_len: self.max_len,
            });
        }
        match name
            .iter()
            .position(|&b| !(b.is_ascii_graphic() && (self.allowed)(b)))
        {
            Some(at) => Err(InvalidTopic::ForbiddenByte { at }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_accept_the_documented_alphabet() {
        let all = "ABCXYZabcxyz0189._~/-";
        assert_eq!(TopicName::new(all).unwrap().as_str(), all);
        assert!(TopicName::new(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn hostile_names_are_refused_without_being_echoed() {
        let long = "a".repeat(129);
        let cases: [(&str, InvalidTopic); 9] = [
            ("", InvalidTopic::Empty),
            (&long, InvalidTopic::TooLong { max_len: 128 }),
            ("a b", InvalidTopic::ForbiddenByte { at: 1 }),
            ("a\nb", InvalidTopic::ForbiddenByte { at: 1 }),
            ("a\0", InvalidTopic::ForbiddenByte { at: 1 }),
            ("x:y", InvalidTopic::ForbiddenByte { at: 1 }),
            ("*", InvalidTopic::ForbiddenByte { at: 0 }),
            ("caf\u{e9}", InvalidTopic::ForbiddenByte { at: 3 }),
            ("a\r\nSET k v", InvalidTopic::ForbiddenByte { at: 1 }),
        ];
        for (name, expected) in cases {
            let error = TopicName::new(name).unwrap_err();
            assert_eq!(error, expected, "{name:?}");
            let message = error.to_string();
            if name.len() > 1 {
                assert!(!message.contains(name), "{message} echoes {name:?}");
            }
        }
    }

    #[test]
    fn configured_rules_cannot_admit_invisible_bytes() {
        let rules = TopicRules::new().max_len(4).allowed(|_| true);
        assert!(rules.validate("a:b*").is_ok());
        assert_eq!(
            rules.validate("abcde"),
            Err(InvalidTopic::TooLong { max_len: 4 })
        );
        assert_eq!(
            rules.validate("a b"),
            Err(InvalidTopic::ForbiddenByte { at: 1 })
        );
        assert_eq!(
            rules.validate("\u{7f}"),
            Err(InvalidTopic::ForbiddenByte { at: 0 })
        );
    }
}
