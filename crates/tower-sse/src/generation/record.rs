//! What a generation keeps in the [`ClaimStore`](tower_sse_core::ClaimStore): its record
//! (state, start and terminal positions), and the keys and ids.

use std::{
    hash::{BuildHasher, Hasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// A generation's state as stored: one line per field, ids being free of line breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The id of the marker appended before any token: a fresh reader resumes after it.
    pub(crate) start: String,
    /// `None` while running.
    pub(crate) terminal: Option<Terminal>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Terminal {
    /// `done`, `error` or `cancelled`.
    pub(crate) kind: String,
    pub(crate) id: String,
    pub(crate) sequence_number: u64,
}

impl Record {
    pub(crate) fn encode(&self) -> String {
        match &self.terminal {
            None => format!("running\n{}", self.start),
            Some(t) => format!(
                "{}\n{}\n{}\n{}",
                t.kind, self.start, t.id, t.sequence_number
            ),
        }
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut lines = text.split('\n');
        let state = lines.next()?;
        let start = lines.next()?.to_owned();
        if state == "running" {
            return Some(Self {
                start,
                terminal: None,
            });
        }
        let id = lines.next()?.to_owned();
        let sequence_number = lines.next()?.parse().ok()?;
        Some(Self {
            start,
            terminal: Some(Terminal {
                kind: state.to_owned(),
                id,
                sequence_number,
            }),
        })
    }
}

/// A new generation id: 32 lowercase hex digits, from a per-process random SipHash key over
/// a counter and the time, so ids are not guessable from one another.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut a = state.build_hasher();
    a.write_u64(n);
    a.write_u128(nanos);
    let first = a.finish();
    let mut b = state.build_hasher();
    b.write_u64(first);
    b.write_u64(n);
    format!("{first:016x}{:016x}", b.finish())
}

/// Whether `id` has the shape of a generation id (so anything else is a 404 without I/O).
pub(crate) fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `text` as a JSON string literal, quotes included.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let running = Record {
            start: "e-1".into(),
            terminal: None,
        };
        assert_eq!(Record::decode(&running.encode()), Some(running));
        let done = Record {
            start: "e-1".into(),
            terminal: Some(Terminal {
                kind: "done".into(),
                id: "e-9".into(),
                sequence_number: 7,
            }),
        };
        assert_eq!(Record::decode(&done.encode()), Some(done));
        assert_eq!(Record::decode("done\ne-1\ne-9\nx"), None);
        assert_eq!(Record::decode(""), None);
    }

    #[test]
    fn ids_are_distinct_and_well_formed() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert!(is_id(&a) && is_id(&b));
        assert!(!is_id("1"));
        assert!(!is_id(&a.to_uppercase()));
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
    }
}
