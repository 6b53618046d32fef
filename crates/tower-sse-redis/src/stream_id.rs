//! Stream entry ids (`<ms>-<seq>`), the log's cursors: strict parsing and ordering.

use std::{cmp::Ordering, fmt};

/// The most bytes of a canonical id: two `u64`s of 20 digits and the dash.
const MAX_LEN: usize = 41;

/// A Redis stream entry id, as Redis writes it: `<ms>-<seq>`, two decimal `u64`s without
/// sign or leading zeros. Ordered as Redis orders entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId {
    ms: u64,
    seq: u64,
}

impl StreamId {
    /// The id before every entry; Redis never assigns it.
    pub(crate) const ZERO: Self = Self { ms: 0, seq: 0 };

    /// Parses an id in exactly the form Redis writes, so that a parsed cursor prints back as
    /// the same string. Everything else (`-`, `+`, `$`, `>`, a missing sequence, signs,
    /// leading zeros, spaces, NUL/CR/LF, overflow) is `None`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.len() > MAX_LEN {
            return None;
        }
        let (ms, seq) = s.split_once('-')?;
        Some(Self {
            ms: canonical_u64(ms)?,
            seq: canonical_u64(seq)?,
        })
    }
}

fn canonical_u64(digits: &str) -> Option<u64> {
    let canonical = match digits.as_bytes() {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        bytes => bytes.iter().all(u8::is_ascii_digit),
    };
    if canonical { digits.parse().ok() } else { None }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The order of two ids, `None` when either is not a canonical id.
pub(crate) fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(StreamId::parse(a)?.cmp(&StreamId::parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_redis_writes() {
        assert_eq!(
            StreamId::parse("1526919030474-55"),
            Some(StreamId {
                ms: 1_526_919_030_474,
                seq: 55
            })
        );
        assert_eq!(StreamId::parse("0-0"), Some(StreamId::ZERO));
        let max = format!("{}-{}", u64::MAX, u64::MAX);
        assert_eq!(StreamId::parse(&max).map(|id| id.to_string()), Some(max));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "-",
            "+",
            "$",
            ">",
            "*",
            "0",
            "1-",
            "-1",
            "1--1",
            "1-1-1",
            "01-1",
            "1-01",
            "+1-1",
            " 1-1",
            "1-1 ",
            "1-1\0",
            "1-1\n",
            "1\r-1",
            "1_000-1",
            "a-1",
            "1-a",
            "18446744073709551616-0", // u64::MAX + 1
            "\u{1F980}-1",
        ] {
            assert_eq!(StreamId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(StreamId::parse(&"1".repeat(64)), None);
    }

    #[test]
    fn orders_like_redis() {
        assert_eq!(compare("9-0", "10-0"), Some(Ordering::Less));
        assert_eq!(compare("10-2", "10-10"), Some(Ordering::Less));
        assert_eq!(compare("10-10", "10-10"), Some(Ordering::Equal));
        assert_eq!(compare("11-0", "10-99"), Some(Ordering::Greater));
        assert_eq!(compare("10-0", "x"), None);
    }
}
