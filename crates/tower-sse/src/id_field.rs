//! The `id` field of one encoded event: found, and replaced, for the streams of several topics
//! (the Hub's and the layer's), whose ids are rewritten to the stream's composite cursor.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// The last `id` field of `block`, one event's lines (the last one counts, as in the WHATWG
/// algorithm): its line, line end excluded, and its value with one leading space stripped.
/// Lines end at CR, LF or CRLF.
pub(crate) fn last_id(block: &[u8]) -> Option<(Range<usize>, &[u8])> {
    let mut last = None;
    let mut start = 0;
    while start < block.len() {
        let end = memchr::memchr2(b'\n', b'\r', &block[start..]).map_or(block.len(), |i| start + i);
        let line = &block[start..end];
        let value = if line == b"id" {
            Some(&b""[..])
        } else {
            line.strip_prefix(b"id:")
                .map(|v| v.strip_prefix(b" ").unwrap_or(v))
        };
        if let Some(value) = value {
            last = Some((start..end, value));
        }
        // The next line starts after this line's end (CRLF is one).
        start = match block.get(end..end + 2) {
            Some(b"\r\n") => end + 2,
            _ => end + 1,
        };
    }
    last
}

/// `block` with the id field on `line` (from [`last_id`]) holding `id`, or with `id: <id>` as
/// its first line when `line` is `None`. Line ends are kept.
pub(crate) fn with_id(block: &[u8], line: Option<Range<usize>>, id: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(block.len() + id.len() + 5);
    match line {
        Some(line) => {
            out.extend_from_slice(&block[..line.start]);
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&block[line.end..]);
        }
        None => {
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(b"\n");
            out.extend_from_slice(block);
        }
    }
    out.freeze()
}

/// `block` with the value of its last `id` field replaced by `id`, or with `id: <id>` as its
/// first line when it has none.
pub(crate) fn replace_id(block: &[u8], id: &str) -> Bytes {
    with_id(block, last_id(block).map(|(line, _)| line), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_id_is_replaced_and_line_ends_kept() {
        assert_eq!(
            &replace_id(b"id: 1\r\ndata: id: 2\r\nid:3\r\n\r\n", "x y")[..],
            b"id: 1\r\ndata: id: 2\r\nid: x y\r\n\r\n"
        );
        assert_eq!(
            &replace_id(b":c\nid\ndata: a\n\n", "k")[..],
            b":c\nid: k\ndata: a\n\n"
        );
        assert_eq!(&replace_id(b"data: a\n\n", "k")[..], b"id: k\ndata: a\n\n");
    }

    #[test]
    fn the_value_has_one_leading_space_stripped() {
        assert_eq!(last_id(b"id:  a\ndata: x\n\n"), Some((0..6, &b" a"[..])));
        assert_eq!(last_id(b"id\n\n"), Some((0..2, &b""[..])));
        assert_eq!(last_id(b"data: id: 1\n\n"), None);
    }
}
