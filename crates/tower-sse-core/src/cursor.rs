//! [`TopicSet`] and its composite cursor: one `Last-Event-ID` for a stream of several topics.
//!
//! A stream that carries the events of several topics cannot resume from one log id: each
//! topic has its own position. The id of every event on such a stream is therefore a
//! *composite cursor* that holds the position of every topic of the set, written by the server
//! and read back by the same server or any other one sharing the log:
//!
//! ```text
//! <topic> m1.<set hash>.<position 1>,<position 2>,...
//! ```
//!
//! - `<topic>` is the topic of the event that carries the id (topic names hold no space), so a
//!   page can tell which topic an event came from (`event.lastEventId.split(" ")[0]`); it is
//!   ignored when the cursor is read back.
//! - `<set hash>` is 16 hex digits of a stable hash (FNV-1a) of the sorted topic names: a
//!   cursor of another set is refused rather than misread.
//! - the positions follow the sorted names; each is the topic's last log id, percent-encoded
//!   where it holds a byte outside `A-Z a-z 0-9 - _ . ~ :`, or empty when the topic is to be
//!   read from its start.
//!
//! Everything after the topic is opaque to clients: they send back the last id they saw.
//! Parsing is bounded by the input (no allocation beyond its length) and fails on anything
//! the encoder did not write.
//!
//! # Example
//!
//! ```
//! use tower_sse_core::{TopicName, TopicSet};
//!
//! let set = TopicSet::new([TopicName::new("chat")?, TopicName::new("alerts")?], 32)?;
//! assert_eq!(set.names()[0].as_str(), "alerts"); // sorted
//! let id = set.encode_cursor(1, &[Some("1-7".into()), None]);
//! assert_eq!(set.parse_cursor(&id), Some(vec![Some("1-7".into()), None]));
//! assert!(id.starts_with("chat "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::{fmt, sync::Arc};

use crate::TopicName;

/// The default most topics one stream may carry.
pub const DEFAULT_MAX_TOPICS_PER_STREAM: usize = 32;

const VERSION: &str = "m1.";

/// The distinct topics of one stream, sorted; the positions of a composite cursor follow this
/// order.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TopicSet {
    names: Arc<[TopicName]>,
    hash: u64,
}

/// A set with no topic, or more distinct topics than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicSetError {
    /// No topic.
    Empty,
    /// More distinct topics than the limit.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// More names than a request may send (duplicates included): a bound on the work one
    /// request causes.
    TooManyNames {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for TopicSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no topic to subscribe to"),
            Self::TooMany { max } => write!(f, "more than {max} distinct topics"),
            Self::TooManyNames { max } => write!(f, "more than {max} topic names"),
        }
    }
}

impl std::error::Error for TopicSetError {}

impl fmt::Debug for TopicSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names.iter()).finish()
    }
}

impl TopicSet {
    /// The distinct names of `topics`, sorted, at most `max` of them.
    ///
    /// # Errors
    ///
    /// [`TopicSetError`] when there is no topic or more than `max` distinct ones.
    pub fn new(
        topics: impl IntoIterator<Item = TopicName>,
        max: usize,
    ) -> Result<Self, TopicSetError> {
        let mut names: Vec<TopicName> = Vec::new();
        for topic in topics {
            if let Err(at) = names.binary_search(&topic) {
                if names.len() == max {
                    return Err(TopicSetError::TooMany { max });
                }
                names.insert(at, topic);
            }
        }
        if names.is_empty() {
            return Err(TopicSetError::Empty);
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for name in &names {
            for &byte in name.as_bytes().iter().chain(b"\n") {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Ok(Self {
            names: names.into(),
            hash,
        })
    }

    /// The topics, sorted.
    pub fn names(&self) -> &[TopicName] {
        &self.names
    }

    /// The number of topics.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always `false`: a set holds at least one topic.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The composite cursor for an event of topic `names()[topic]` when the topics stand at
    /// `positions` (one per topic, in the order of [`names`](Self::names); `None`: from the
    /// topic's start).
    ///
    /// # Panics
    ///
    /// If `topic` is out of range or `positions` has not one entry per topic.
    pub fn encode_cursor(&self, topic: usize, positions: &[Option<Arc<str>>]) -> String {
        assert_eq!(positions.len(), self.names.len(), "one position per topic");
        let label = &self.names[topic];
        let mut out = String::with_capacity(
            label.len()
                + 21
                + positions
                    .iter()
                    .flatten()
                    .map(|p| p.len() + 1)
                    .sum::<usize>(),
        );
        out.push_str(label);
        out.push(' ');
        out.push_str(VERSION);
        out.push_str(&format!("{:016x}.", self.hash));
        for (i, position) in positions.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(position) = position {
                for &byte in position.as_bytes() {
                    if byte.is_ascii_alphanumeric()
                        || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':')
                    {
                        out.push(char::from(byte));
                    } else {
                        out.push_str(&format!("%{byte:02X}"));
                    }
                }
            }
        }
        out
    }

    /// Whether `value` has the shape of a composite cursor (of any set): `<topic> m1.`, 16 hex
    /// digits and a dot. A layer that replays single topics leaves such cursors to the stream
    /// that issued them.
    pub fn is_cursor(value: &str) -> bool {
        value.split_once(' ').is_some_and(|(_, rest)| {
            rest.strip_prefix(VERSION).is_some_and(|rest| {
                rest.as_bytes().get(16) == Some(&b'.')
                    && rest.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit)
            })
        })
    }

    /// The positions a composite cursor of this set holds, in the order of
    /// [`names`](Self::names); `None` when `cursor` is not a cursor of this set (malformed,
    /// another set, a plain log id).
    pub fn parse_cursor(&self, cursor: &str) -> Option<Vec<Option<Arc<str>>>> {
        let (_label, rest) = cursor.split_once(' ')?;
        let rest = rest.strip_prefix(VERSION)?;
        let (hash, positions) = rest.split_once('.')?;
        if hash.len() != 16 || u64::from_str_radix(hash, 16).ok()? != self.hash {
            return None;
        }
        let mut out = Vec::with_capacity(self.names.len());
        for part in positions.split(',') {
            if out.len() == self.names.len() {
                return None;
            }
            out.push(if part.is_empty() {
                None
            } else {
                Some(Arc::from(percent_decode(part)?))
            });
        }
        (out.len() == self.names.len()).then_some(out)
    }
}

/// Decodes what [`TopicSet::encode_cursor`] wrote: `%XX` escapes; `None` on anything else.
fn percent_decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    let out = String::from_utf8(out).ok()?;
    // A log id never holds these; one that does was not written by the encoder.
    (!out.is_empty() && !out.contains(['\0', '\r', '\n'])).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> TopicSet {
        TopicSet::new(names.iter().map(|n| TopicName::new(n).unwrap()), 32).unwrap()
    }

    #[test]
    fn names_are_distinct_and_sorted() {
        let s = set(&["b", "a", "b", "c"]);
        let names: Vec<&str> = s.names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(s, set(&["c", "a", "b"]));
    }

    #[test]
    fn limits() {
        let many = (0..33).map(|i| TopicName::new(&format!("t{i}")).unwrap());
        assert_eq!(
            TopicSet::new(many, 32).unwrap_err(),
            TopicSetError::TooMany { max: 32 }
        );
        let dup = (0..100).map(|_| TopicName::new("same").unwrap());
        assert_eq!(TopicSet::new(dup, 32).unwrap().len(), 1);
        assert_eq!(TopicSet::new([], 32).unwrap_err(), TopicSetError::Empty);
    }

    #[test]
    fn round_trip_with_odd_ids() {
        let s = set(&["x", "y", "z"]);
        let positions = vec![
            Some(Arc::from("a,b %c\u{e9}")),
            None,
            Some(Arc::from("17-0")),
        ];
        let id = s.encode_cursor(2, &positions);
        assert!(id.starts_with("z m1."), "{id}");
        assert!(!id.contains(['\r', '\n', '\0']));
        assert!(
            id.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
            "{id}"
        );
        assert_eq!(s.parse_cursor(&id), Some(positions));
    }

    #[test]
    fn composite_cursors_are_recognised() {
        let id = set(&["x", "y"]).encode_cursor(1, &[None, Some("1-2".into())]);
        assert!(TopicSet::is_cursor(&id));
        for other in [
            "",
            "1-2",
            "x m1.",
            "x m1.0123456789abcdeg.",
            "0123456789abcdef-12",
        ] {
            assert!(!TopicSet::is_cursor(other), "{other:?}");
        }
    }

    #[test]
    fn foreign_and_broken_cursors_are_refused() {
        let s = set(&["x", "y"]);
        let id = s.encode_cursor(0, &[Some("1".into()), Some("2".into())]);
        assert_eq!(set(&["x", "z"]).parse_cursor(&id), None);
        assert_eq!(set(&["x"]).parse_cursor(&id), None);
        for bad in [
            "",
            "1-2",
            "x m1.",
            "x m2.0000000000000000.1,2",
            &id.replace(",2", ",2,3"),
            &id.replace(",2", ""),
            &id.replace(",2", ",%zz"),
            &id.replace(",2", ",%0A"),
            &id.replace(",2", ",a b"),
        ] {
            assert_eq!(s.parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn thirty_two_long_redis_ids_fit_in_4096_bytes() {
        let names: Vec<TopicName> = (0..32)
            .map(|i| TopicName::new(&format!("{i:0>128}")).unwrap())
            .collect();
        let s = TopicSet::new(names, 32).unwrap();
        let positions = vec![Some(Arc::from("18446744073709551615-18446744073709551615")); 32];
        assert!(s.encode_cursor(31, &positions).len() <= 4096);
    }

    proptest::proptest! {
        #[test]
        fn any_log_ids_round_trip(
            ids in proptest::collection::vec(proptest::option::of("[^\r\n\x00]{1,40}"), 1..8),
            at in 0usize..8,
        ) {
            let names: Vec<TopicName> =
                (0..ids.len()).map(|i| TopicName::new(&format!("t{i}")).unwrap()).collect();
            let s = TopicSet::new(names, 32).unwrap();
            let positions: Vec<Option<Arc<str>>> =
                ids.iter().map(|id| id.as_deref().map(Arc::from)).collect();
            let id = s.encode_cursor(at % positions.len(), &positions);
            proptest::prop_assert!(id.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
            proptest::prop_assert_eq!(s.parse_cursor(&id), Some(positions));
        }

        #[test]
        fn parsing_anything_never_panics(input in ".{0,300}") {
            let s = set(&["a", "b"]);
            let _ = s.parse_cursor(&input);
            let _ = s.parse_cursor(&format!("a m1.{}", input));
        }
    }
}
