//! Property: `Event::encoded_len` is exactly what `encode` appends and what `to_bytes` holds,
//! for every event the encoder accepts, over an alphabet of every line break kind.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use tower_sse_core::{Event, encode_comment, encode_comment_line, encode_retry};

/// Every line break kind and the pieces around them; long runs of lines come from repeats.
const PIECES: &[&str] = &[
    "\r",
    "\n",
    "\r\n",
    "\n\r",
    "",
    " ",
    "a",
    "data",
    "é",
    "🦀",
    "\u{2028}",
    "0123456789",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.concat()),
        // Past the 64 line breaks the encoder remembers per field.
        (prop::sample::select(PIECES), 60..200usize).prop_map(|(p, n)| format!("x{p}").repeat(n)),
    ]
}

/// A value for `id` or `event`: no CR, LF or NUL.
fn field() -> impl Strategy<Value = String> {
    "[a-z0-9 é:]{0,12}"
}

/// The smallest capacity a `Vec<u8>` (and so a `BytesMut`) grows to.
const MIN_CAPACITY: usize = 8;

proptest! {
    #[test]
    fn encoded_len_is_exact(
        id in prop::option::of(field()),
        ty in prop::option::of(field()),
        data in prop::option::of(text()),
        retry in prop::option::of(any::<u64>()),
        nanos in 0..2_000_000u32,
        comment in prop::option::of(text()),
        prefix in 0..20usize,
    ) {
        let mut event = Event::new();
        if let Some(id) = &id {
            event = event.id(id.as_str()).unwrap();
        }
        if let Some(ty) = &ty {
            event = event.event(ty.as_str()).unwrap();
        }
        if let Some(data) = &data {
            event = event.data(data.as_str());
        }
        if let Some(retry) = retry {
            event = event.retry(Duration::from_millis(retry) + Duration::from_nanos(u64::from(nanos)));
        }
        if let Some(comment) = &comment {
            event = event.comment(comment.as_str());
        }
        let len = event.encoded_len();
        prop_assert_eq!(event.to_bytes().len(), len);

        // Appending after what the buffer holds adds exactly that many bytes.
        let mut buf = BytesMut::from(&"p".repeat(prefix)[..]);
        event.encode(&mut buf);
        prop_assert_eq!(buf.len(), prefix + len);
        prop_assert_eq!(&buf[prefix..], &event.to_bytes()[..]);
        // Into an empty buffer: one reservation of exactly that size.
        let mut buf = BytesMut::new();
        event.encode(&mut buf);
        prop_assert_eq!(buf.capacity(), len.max(MIN_CAPACITY));
    }

    #[test]
    fn frame_helpers_reserve_exactly(text in text(), millis in any::<u64>()) {
        let mut buf = BytesMut::new();
        encode_comment(&text, &mut buf);
        prop_assert_eq!(buf.capacity(), buf.len().max(MIN_CAPACITY));
        let mut buf = BytesMut::new();
        encode_comment_line(&text, &mut buf);
        prop_assert_eq!(buf.capacity(), buf.len().max(MIN_CAPACITY));
        let mut buf = BytesMut::new();
        encode_retry(Duration::from_millis(millis), &mut buf);
        prop_assert_eq!(buf.capacity(), buf.len().max(MIN_CAPACITY));
    }
}
