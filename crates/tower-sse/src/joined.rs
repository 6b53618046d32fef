//! [`Joined`]: the inner body's ready frames, joined into one body frame.
//!
//! Joining saves a write and a chunk header per event, but the joined frame is new memory,
//! and how it is allocated decides whether streaming page-faults. hyper queues up to 16 body
//! frames before it writes and frees them together; frames of tens of KiB, grown by doubling,
//! made glibc's malloc see hundreds of KiB come free at the top of its heap at once, give them
//! back to the kernel (its 128 KiB trim threshold) and fault them in again for the next frames:
//! about one minor page fault per 4 KiB event (`benches/benches/large.rs`). So:
//!
//! - the handles of the first ready frames wait here until the frame's size is known, and the
//!   frame is then allocated once, at exactly that size (past a few frames, small ones, it is
//!   copied into room for the whole limit);
//! - a single ready frame is passed on as it is, never copied; with the default
//!   [`coalesce_limit`](crate::SseLayer::coalesce_limit) an event as large as the limit is
//!   always alone, so large events are never copied at all;
//! - the default limit keeps the frames hyper queues well under the trim threshold.

use bytes::{Bytes, BytesMut};

/// The frames whose handles wait on the stack; past them, the frame is copied as it grows.
const INLINE: usize = 8;

/// Ready data frames, joined into one when there are two or more.
pub(crate) struct Joined {
    parts: [Option<Bytes>; INLINE],
    count: usize,
    /// Past `INLINE` frames: the frame so far, with room for `limit` bytes.
    spilled: Option<BytesMut>,
    limit: usize,
    /// Bytes pushed so far.
    pub(crate) len: usize,
    /// Inner frames seen, empty ones included (the caller bounds them).
    pub(crate) frames: usize,
}

impl Joined {
    /// An empty join for frames of about `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            parts: [const { None }; INLINE],
            count: 0,
            spilled: None,
            limit,
            len: 0,
            frames: 0,
        }
    }

    /// Adds a frame; empty ones are dropped.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if let Some(buf) = &mut self.spilled {
            buf.extend_from_slice(&data);
        } else if self.count < INLINE {
            self.parts[self.count] = Some(data);
            self.count += 1;
        } else {
            // Many small frames: copy them now, into room for the whole frame.
            let mut buf = BytesMut::with_capacity(self.len.max(self.limit));
            for part in self.parts.iter_mut().filter_map(Option::take) {
                buf.extend_from_slice(&part);
            }
            buf.extend_from_slice(&data);
            self.spilled = Some(buf);
        }
    }

    /// The joined frame: the only frame as it is, or the frames copied into one allocation
    /// (of exactly `len` bytes for up to `INLINE` frames).
    pub(crate) fn finish(mut self) -> Option<Bytes> {
        if let Some(buf) = self.spilled {
            return Some(buf.freeze());
        }
        match self.count {
            0 => None,
            1 => self.parts[0].take(),
            n => {
                let mut buf = BytesMut::with_capacity(self.len);
                for part in self.parts[..n].iter().flatten() {
                    buf.extend_from_slice(part);
                }
                // `len == capacity`: the `Bytes` takes the allocation over, adding none.
                Some(buf.freeze())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_passed_on_as_is() {
        let one = Bytes::from(vec![7u8; 5000]);
        let mut joined = Joined::new(64);
        joined.push(one.clone());
        joined.push(Bytes::new());
        let out = joined.finish().unwrap();
        assert_eq!(out.as_ptr(), one.as_ptr(), "not copied");
    }

    #[test]
    fn frames_are_joined_in_order_and_empty_ones_dropped() {
        let mut joined = Joined::new(64);
        joined.push(Bytes::from_static(b"ab"));
        joined.push(Bytes::new());
        joined.push(Bytes::from_static(b"cd"));
        assert_eq!(joined.len, 4);
        assert_eq!(&joined.finish().unwrap()[..], b"abcd");
        assert_eq!(Joined::new(64).finish(), None);
    }

    #[test]
    fn many_frames_spill_in_order() {
        for n in [INLINE - 1, INLINE, INLINE + 1, 10 * INLINE] {
            let mut joined = Joined::new(16);
            for i in 0..n {
                joined.push(Bytes::from(vec![i as u8; 3]));
            }
            let out = joined.finish().unwrap();
            assert_eq!(out.len(), 3 * n);
            assert!(out.chunks(3).enumerate().all(|(i, c)| c == [i as u8; 3]));
        }
    }
}
