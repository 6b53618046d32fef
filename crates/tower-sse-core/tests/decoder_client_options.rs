//! The decoder options a client needs: reported comments, a preset last event id, and a long
//! line fed in many chunks.

use tower_sse_core::{DecodeError, Decoded, Decoder};

fn drain(decoder: &mut Decoder) -> Vec<Result<Decoded, DecodeError>> {
    let mut out = Vec::new();
    loop {
        match decoder.decode() {
            Ok(None) => return out,
            Ok(Some(item)) => out.push(Ok(item)),
            Err(e) => out.push(Err(e)),
        }
    }
}

#[test]
fn comments_are_reported_when_asked_in_any_chunking() {
    let input = b"\xEF\xBB\xBF:one\r\n: two\rdata: x\n:\n\n";
    for chunk in [1, 2, 5, input.len()] {
        let mut decoder = Decoder::new().report_comments(true);
        let mut items = Vec::new();
        for piece in input.chunks(chunk) {
            decoder.feed(piece);
            items.extend(drain(&mut decoder));
        }
        let comments: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                Ok(Decoded::Comment(c)) => Some(c.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(comments, ["one", " two", ""], "chunk {chunk}");
        assert!(matches!(items.last(), Some(Ok(Decoded::Event(e))) if e.data() == "x"));
    }
    let mut quiet = Decoder::new();
    quiet.feed(b":one\ndata: x\n\n");
    assert_eq!(drain(&mut quiet).len(), 1);
}

#[test]
fn an_overlong_reported_comment_is_skipped_and_the_event_kept() {
    let mut decoder = Decoder::new().report_comments(true).max_event_size(8);
    decoder.feed(b"data: a\n:");
    decoder.feed(&[b'c'; 64]);
    decoder.feed(b"\n:ok\n\n");
    let items = drain(&mut decoder);
    assert!(
        matches!(&items[0], Ok(Decoded::Comment(c)) if c == "ok"),
        "{items:?}"
    );
    assert!(
        matches!(&items[1], Ok(Decoded::Event(e)) if e.data() == "a"),
        "{items:?}"
    );
}

#[test]
fn a_preset_last_event_id_carries_until_replaced() {
    let mut decoder = Decoder::new();
    decoder.set_last_event_id("abc");
    decoder.feed(b"data: 1\n\nid: 2\ndata: 2\n\n");
    let ids: Vec<_> = drain(&mut decoder)
        .into_iter()
        .map(|i| match i {
            Ok(Decoded::Event(e)) => e.last_event_id().to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["abc", "2"]);
}

#[test]
fn a_long_line_in_many_chunks_decodes_whole() {
    let line = "x".repeat(1 << 20);
    let wire = format!("data: {line}\r\n\r\ndata: after\n\n");
    let mut decoder = Decoder::new().max_event_size(2 << 20);
    let mut items = Vec::new();
    for piece in wire.as_bytes().chunks(1000) {
        decoder.feed(piece);
        items.extend(drain(&mut decoder));
    }
    assert_eq!(items.len(), 2);
    assert!(matches!(&items[0], Ok(Decoded::Event(e)) if e.data() == line));
    assert!(matches!(&items[1], Ok(Decoded::Event(e)) if e.data() == "after"));
}
