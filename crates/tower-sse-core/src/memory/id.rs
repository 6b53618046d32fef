//! The ids a [`MemoryLog`](crate::MemoryLog) issues: `{epoch}-{seq}`.
//!
//! The epoch is 16 lowercase hex digits drawn at random per log instance; the sequence number
//! is decimal, starts at 1, is shared by all topics of the instance and is written without
//! leading zeros. Parsing accepts exactly the strings this format produces, so each position
//! has one id and anything else is reported as malformed.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::UnknownCursor;

const EPOCH_DIGITS: usize = 16;
/// `u64::MAX` has 20 decimal digits.
const MAX_SEQ_DIGITS: usize = 20;
/// The longest id: epoch, dash, sequence number.
pub(super) const MAX_ID_LEN: usize = EPOCH_DIGITS + 1 + MAX_SEQ_DIGITS;

/// A log instance's epoch, kept pre-formatted as the id prefix `{epoch}-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Epoch {
    prefix: [u8; EPOCH_DIGITS + 1],
}

impl Epoch {
    /// A fresh random epoch.
    ///
    /// `RandomState` is seeded from the operating system's randomness once per thread and
    /// varies with every construction; hashing a process-wide counter with it gives distinct
    /// epochs within a process and unpredictable ones across restarts, without a `rand`
    /// dependency and without reading a clock.
    pub(super) fn random() -> Self {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(INSTANCES.fetch_add(1, Ordering::Relaxed));
        Self::from_u64(hasher.finish())
    }

    pub(super) fn from_u64(epoch: u64) -> Self {
        let mut prefix = [b'-'; EPOCH_DIGITS + 1];
        for (i, digit) in prefix[..EPOCH_DIGITS].iter_mut().enumerate() {
            let nibble = (epoch >> (4 * (EPOCH_DIGITS - 1 - i))) & 0xf;
            *digit = b"0123456789abcdef"[nibble as usize];
        }
        Self { prefix }
    }

    /// The epoch's hex digits.
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.prefix[..EPOCH_DIGITS]).unwrap_or_default()
    }

    /// The id of sequence number `seq` in this epoch.
    pub(super) fn id(&self, seq: u64) -> Arc<str> {
        let mut buf = [0u8; MAX_ID_LEN];
        buf[..self.prefix.len()].copy_from_slice(&self.prefix);
        let mut digits = [0u8; MAX_SEQ_DIGITS];
        let mut start = MAX_SEQ_DIGITS;
        let mut n = seq;
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = self.prefix.len() + MAX_SEQ_DIGITS - start;
        buf[self.prefix.len()..len].copy_from_slice(&digits[start..]);
        // Hex digits, a dash and decimal digits: always ASCII.
        Arc::from(std::str::from_utf8(&buf[..len]).expect("ids are ASCII"))
    }

    /// The sequence number `cursor` names in this epoch.
    ///
    /// Does not check that the sequence number has been assigned; the log does.
    pub(super) fn parse(&self, cursor: &str) -> Result<u64, UnknownCursor> {
        let bytes = cursor.as_bytes();
        if bytes.len() > MAX_ID_LEN || bytes.len() < self.prefix.len() + 1 {
            return Err(UnknownCursor::Malformed);
        }
        let (epoch, seq) = bytes.split_at(self.prefix.len());
        let well_formed = epoch[..EPOCH_DIGITS]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && epoch[EPOCH_DIGITS] == b'-'
            && seq.iter().all(u8::is_ascii_digit)
            && seq[0] != b'0';
        if !well_formed {
            return Err(UnknownCursor::Malformed);
        }
        // Twenty digits can still overflow a u64.
        let seq = seq.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        let seq = seq.ok_or(UnknownCursor::Malformed)?;
        if epoch != &self.prefix[..] {
            return Err(UnknownCursor::OtherEpoch);
        }
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let epoch = Epoch::from_u64(0x0123_4567_89ab_cdef);
        for seq in [1, 9, 10, 12345, u64::MAX] {
            let id = epoch.id(seq);
            assert_eq!(epoch.parse(&id), Ok(seq), "{id}");
        }
        assert_eq!(&*epoch.id(42), "0123456789abcdef-42");
        assert_eq!(epoch.id(u64::MAX).len(), MAX_ID_LEN);
    }

    #[test]
    fn only_canonical_ids_parse() {
        let epoch = Epoch::from_u64(0xabc);
        let malformed = [
            "",
            "0000000000000abc",
            "0000000000000abc-",
            "0000000000000abc-0",
            "0000000000000abc-01",
            "0000000000000abc-+1",
            "0000000000000abc--1",
            "0000000000000abc-1 ",
            "0000000000000ABC-1",
            "000000000000abc-1",
            "0000000000000abc_1",
            "0000000000000abc-18446744073709551616",
            "0000000000000abc-1\n",
            "0000000000000abc-1\0",
        ];
        for cursor in malformed {
            assert_eq!(
                epoch.parse(cursor),
                Err(UnknownCursor::Malformed),
                "{cursor:?}"
            );
        }
        assert_eq!(
            epoch.parse("0000000000000abd-1"),
            Err(UnknownCursor::OtherEpoch)
        );
        assert_eq!(
            epoch.parse("0000000000000abc-18446744073709551615"),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn epochs_differ() {
        let a = Epoch::random();
        let b = Epoch::random();
        assert_ne!(a, b);
        assert_eq!(b.parse(&a.id(1)), Err(UnknownCursor::OtherEpoch));
    }
}
