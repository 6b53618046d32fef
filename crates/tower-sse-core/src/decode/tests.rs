//! Unit tests of the decoder's sharing and fallbacks (the WHATWG vectors and the
//! chunking proptests are in `tests/`).

use super::*;

fn events(decoder: &mut Decoder) -> Vec<MessageEvent> {
    let mut out = Vec::new();
    while let Some(item) = decoder.decode().unwrap() {
        if let Decoded::Event(event) = item {
            out.push(event);
        }
    }
    out
}

#[test]
fn the_events_of_one_chunk_share_its_text() {
    let mut decoder = Decoder::new();
    let wire = b"id: 1\nevent: a\ndata: first\n\nid: 2\ndata: second\n\ndata: third\n\n";
    decoder.feed(wire);
    let got = events(&mut decoder);
    assert_eq!(got.len(), 3);
    let base = got[0].data().as_ptr() as usize;
    let fields = got
        .iter()
        .flat_map(|e| [e.data(), e.event_type(), e.last_event_id()]);
    for field in fields.filter(|f| *f != "message") {
        let offset = (field.as_ptr() as usize).wrapping_sub(base);
        // within the bytes fed, on either side of the first data field
        assert!(
            offset < wire.len() || offset.wrapping_neg() < wire.len(),
            "{field:?} copied"
        );
    }
    assert_eq!(got[1].event_type(), "message");
    // the third event's id is the second's, in the same text
    assert_eq!(got[2].last_event_id(), "2");
}

#[test]
fn an_id_from_an_earlier_chunk_carries_over() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 41\ndata: a\n\n");
    let first = events(&mut decoder);
    decoder.feed(b"data: b\n\n");
    let second = events(&mut decoder);
    assert_eq!(first[0].last_event_id(), "41");
    assert_eq!(second[0].last_event_id(), "41");
    assert_eq!(decoder.last_event_id(), "41");
}

#[test]
fn an_event_cut_by_a_chunk_boundary_is_whole() {
    let mut decoder = Decoder::new();
    decoder.feed(b"event: t\nid: 9\ndata: x\n");
    assert_eq!(decoder.decode(), Ok(None));
    decoder.feed(b"data: y\n\n");
    let got = events(&mut decoder);
    assert_eq!(
        (got[0].event_type(), got[0].data(), got[0].last_event_id()),
        ("t", "x\ny", "9")
    );
}

#[test]
fn invalid_utf8_is_replaced_field_by_field() {
    let mut decoder = Decoder::new();
    decoder.feed(b"event: \xE2\x82\ndata: \xAC\n\ndata: ok\n\n");
    let got = events(&mut decoder);
    assert_eq!(got[0].event_type(), "\u{FFFD}");
    assert_eq!(got[0].data(), "\u{FFFD}");
    assert_eq!(got[1].data(), "ok");
}

#[test]
fn multi_line_data_is_joined() {
    let mut decoder = Decoder::new();
    decoder.feed(b"data: a\ndata: b\n\ndata: c\ndata:\ndata: d\n\n");
    let got = events(&mut decoder);
    let data: Vec<&str> = got.iter().map(MessageEvent::data).collect();
    assert_eq!(data, ["a\nb", "c\n\nd"]);
}

#[test]
fn a_field_split_across_feeds_is_whole() {
    let mut decoder = Decoder::new();
    for piece in [&b"id: 4"[..], b"2\nda", b"ta: he", b"llo\r", b"\n\r\n"] {
        decoder.feed(piece);
    }
    let got = events(&mut decoder);
    assert_eq!((got[0].last_event_id(), got[0].data()), ("42", "hello"));
}
