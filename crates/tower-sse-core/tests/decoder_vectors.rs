//! Decoder vectors: the web-platform-tests `eventsource/format-*` cases, the examples of the
//! WHATWG "Server-sent events" section, and one case per parsing rule.
//!
//! Every vector is fed whole, one byte at a time, and split in two at every position; all
//! feedings must give the same events, last event id and reconnection time.

use std::time::Duration;

use tower_sse_core::{DecodeError, Decoded, Decoder};

#[derive(Debug, PartialEq)]
struct Outcome {
    items: Vec<Item>,
    last_event_id: String,
    retry: Option<Duration>,
}

/// A dispatched event as (type, data, last event id), a retry update, or an oversize error.
#[derive(Debug, PartialEq)]
enum Item {
    Event(String, String, String),
    Retry(u64),
    TooLarge,
}

fn ev(ty: &str, data: &str, id: &str) -> Item {
    Item::Event(ty.into(), data.into(), id.into())
}

fn msg(data: &str) -> Item {
    ev("message", data, "")
}

fn run(chunks: &[&[u8]], max: Option<usize>) -> Outcome {
    let mut decoder = Decoder::new();
    if let Some(max) = max {
        decoder = decoder.max_event_size(max);
    }
    let mut items = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        loop {
            match decoder.decode() {
                Ok(Some(Decoded::Event(e))) => items.push(Item::Event(
                    e.event_type().into(),
                    e.data().into(),
                    e.last_event_id().into(),
                )),
                Ok(Some(Decoded::Retry(r))) => items.push(Item::Retry(r.as_millis() as u64)),
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Ok(None) => break,
                Err(DecodeError::EventTooLarge { .. }) => items.push(Item::TooLarge),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    decoder.finish();
    Outcome {
        items,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

/// Checks `input` against `expected` under every feeding.
fn check(input: &[u8], expected: Vec<Item>, last_event_id: &str, retry: Option<u64>) {
    let expected = Outcome {
        items: expected,
        last_event_id: last_event_id.into(),
        retry: retry.map(Duration::from_millis),
    };
    assert_eq!(run(&[input], None), expected, "fed whole");
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes, None), expected, "fed one byte at a time");
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(run(&[a, b], None), expected, "split at {cut}");
    }
}

// --- web-platform-tests eventsource/format-* ---

#[test]
fn wpt_format_bom() {
    check(
        "\u{FEFF}data: 1\n\n\u{FEFF}data: 2\n\ndata: 3\n\n".as_bytes(),
        vec![msg("1"), msg("3")],
        "",
        None,
    );
}

#[test]
fn wpt_format_bom_2() {
    check(
        "\u{FEFF}\u{FEFF}data: 1\n\ndata: 2\n\ndata: 3\n\n".as_bytes(),
        vec![msg("2"), msg("3")],
        "",
        None,
    );
}

#[test]
fn wpt_format_comments() {
    let long = "x".repeat(2049);
    let input =
        format!("data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n\n");
    check(input.as_bytes(), vec![msg("1\n2\n3\n4")], "", None);
}

#[test]
fn wpt_format_data_before_final_empty_line() {
    check(
        b"retry:1000\ndata:test1\n\nid:test\ndata:test2",
        vec![Item::Retry(1000), msg("test1")],
        "",
        Some(1000),
    );
}

#[test]
fn wpt_format_field_data() {
    check(
        b"data:\n\ndata\ndata\n\ndata:test\n\n",
        vec![msg(""), msg("\n"), msg("test")],
        "",
        None,
    );
}

#[test]
fn wpt_format_field_event_empty() {
    check(b"event: \ndata:data\n\n", vec![msg("data")], "", None);
}

#[test]
fn wpt_format_field_event() {
    check(
        b"event:test\ndata:x\n\ndata:x\n\n",
        vec![ev("test", "x", ""), msg("x")],
        "",
        None,
    );
}

#[test]
fn wpt_format_field_id() {
    check(
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\n",
        vec![ev("message", "1", "1"), msg("2")],
        "",
        None,
    );
}

#[test]
fn wpt_format_field_id_2() {
    check(
        b"id:1\ndata:\n\nid\ndata:\n\n",
        vec![ev("message", "", "1"), msg("")],
        "",
        None,
    );
}

#[test]
fn wpt_format_field_id_null() {
    check(b"id: 1\0\ndata: x\n\n", vec![msg("x")], "", None);
    check(
        b"id: a\ndata: x\n\nid: b\0c\ndata: y\n\n",
        vec![ev("message", "x", "a"), ev("message", "y", "a")],
        "a",
        None,
    );
}

#[test]
fn wpt_format_field_parsing() {
    check(
        b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
        vec![msg("\0\n 2\n1\n3\n\n4")],
        "",
        None,
    );
}

#[test]
fn wpt_format_field_retry_bogus() {
    check(
        b"retry:3000\nretry:1000x\ndata:x\n\n",
        vec![Item::Retry(3000), msg("x")],
        "",
        Some(3000),
    );
}

#[test]
fn wpt_format_field_retry_empty() {
    check(b"retry\ndata:test\n\n", vec![msg("test")], "", None);
}

#[test]
fn wpt_format_field_retry() {
    check(
        b"retry:03000\ndata:x\n\n",
        vec![Item::Retry(3000), msg("x")],
        "",
        Some(3000),
    );
}

#[test]
fn wpt_format_field_unknown() {
    check(
        b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
        vec![msg("test\n\ntest")],
        "",
        None,
    );
}

#[test]
fn wpt_format_leading_space() {
    check(
        b"data:\ttest\rdata: \ndata:test\n\n",
        vec![msg("\ttest\n\ntest")],
        "",
        None,
    );
}

#[test]
fn wpt_format_newlines() {
    check(
        b"data:test\r\ndata\ndata:test\r\n\r\n",
        vec![msg("test\n\ntest")],
        "",
        None,
    );
}

#[test]
fn wpt_format_null_character() {
    check(b"data:\0\n\n\n\n", vec![msg("\0")], "", None);
}

#[test]
fn wpt_format_utf_8() {
    check("data:ok€\n\n".as_bytes(), vec![msg("ok€")], "", None);
}

// --- the WHATWG section's examples ---

#[test]
fn spec_example_stock_ticker() {
    check(
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        vec![msg("YHOO\n+2\n10")],
        "",
        None,
    );
}

#[test]
fn spec_example_four_blocks() {
    check(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
        vec![
            ev("message", "first event", "1"),
            msg("second event"),
            msg(" third event"),
        ],
        "",
        None,
    );
}

#[test]
fn spec_example_empty_data() {
    check(
        b"data\n\ndata\ndata\n\ndata:",
        vec![msg(""), msg("\n")],
        "",
        None,
    );
}

#[test]
fn spec_example_space_after_colon_optional() {
    check(
        b"data:test\n\ndata: test\n\n",
        vec![msg("test"), msg("test")],
        "",
        None,
    );
}

#[test]
fn spec_example_event_types() {
    check(
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        vec![
            ev("add", "73857293", ""),
            ev("remove", "2153", ""),
            ev("add", "113411", ""),
        ],
        "",
        None,
    );
}

// --- one case per rule ---

#[test]
fn only_one_leading_bom_is_stripped_and_only_at_start() {
    check("\u{FEFF}data: a\n\n".as_bytes(), vec![msg("a")], "", None);
    check(
        "data: a\u{FEFF}\n\n".as_bytes(),
        vec![msg("a\u{FEFF}")],
        "",
        None,
    );
    // A BOM prefix that is not a BOM is part of the first field's name.
    check(b"\xEF\xBBdata: a\n\n", vec![], "", None);
}

#[test]
fn cr_lf_and_crlf_line_ends_mix() {
    check(
        b"data: a\rdata: b\ndata: c\r\n\r\ndata: d\r\rdata: e\n\r\n",
        vec![msg("a\nb\nc"), msg("d"), msg("e")],
        "",
        None,
    );
}

#[test]
fn field_without_colon_has_empty_value() {
    check(b"data\nevent\n\n", vec![msg("")], "", None);
}

#[test]
fn at_most_one_leading_space_is_removed() {
    check(b"data:   three\n\n", vec![msg("  three")], "", None);
    check(b"event:  t\ndata\n\n", vec![ev(" t", "", "")], "", None);
}

#[test]
fn value_keeps_colons() {
    check(b"data: a:b: c\n\n", vec![msg("a:b: c")], "", None);
}

#[test]
fn event_type_resets_after_dispatch_even_without_data() {
    check(
        b"event: x\n\ndata: a\n\nevent: y\ndata: b\n\ndata: c\n\n",
        vec![msg("a"), ev("y", "b", ""), msg("c")],
        "",
        None,
    );
}

#[test]
fn id_carries_over_and_empty_id_resets() {
    check(
        b"id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        vec![ev("message", "a", "5"), ev("message", "b", "5"), msg("c")],
        "",
        None,
    );
}

#[test]
fn id_only_block_sets_last_event_id() {
    check(b"id: 7\n\n", vec![], "7", None);
    check(
        b"data: a\n\nid: 8\n\ndata: b\n\n",
        vec![msg("a"), ev("message", "b", "8")],
        "8",
        None,
    );
}

#[test]
fn id_in_unterminated_block_is_not_kept() {
    check(b"id: 1\n\nid: 2\ndata: x\n", vec![], "1", None);
}

#[test]
fn retry_only_all_digits() {
    check(
        b"retry: 10\nretry: -1\nretry: 1.5\nretry: 2 \nretry: \xd9\xa1\nretry: 20\n\n",
        vec![Item::Retry(10), Item::Retry(20)],
        "",
        Some(20),
    );
    // Overflow saturates rather than being ignored or wrapping.
    check(
        b"retry: 99999999999999999999999\n\n",
        vec![Item::Retry(u64::MAX)],
        "",
        Some(u64::MAX),
    );
}

#[test]
fn unterminated_tail_is_discarded() {
    check(b"data: a\n\ndata: b\n", vec![msg("a")], "", None);
    check(b"data: a\n\ndata: b", vec![msg("a")], "", None);
    check(b"data: a\n\ndata: b\r", vec![msg("a")], "", None);
}

#[test]
fn invalid_utf8_is_replaced() {
    check(b"data: a\xFFb\n\n", vec![msg("a\u{FFFD}b")], "", None);
    // A truncated sequence at a line end is one replacement character.
    check(b"data: \xE2\x82\n\n", vec![msg("\u{FFFD}")], "", None);
    check(
        b"id: \xC3\ndata\n\n",
        vec![ev("message", "", "\u{FFFD}")],
        "\u{FFFD}",
        None,
    );
}

#[test]
fn code_point_split_across_chunks() {
    // check() splits at every position, including inside the 4-byte crab.
    check("data: 🦀€é\n\n".as_bytes(), vec![msg("🦀€é")], "", None);
}

#[test]
fn oversized_event_is_an_error_and_decoding_recovers() {
    let big = format!("data: {}\n\ndata: ok\n\n", "x".repeat(100));
    let expected = Outcome {
        items: vec![Item::TooLarge, msg("ok")],
        last_event_id: String::new(),
        retry: None,
    };
    assert_eq!(run(&[big.as_bytes()], Some(32)), expected);
    let bytes: Vec<&[u8]> = big.as_bytes().chunks(1).collect();
    assert_eq!(run(&bytes, Some(32)), expected);

    // Many short lines add up too; the rest of the event is skipped, its id included.
    let lines = format!("id: 9\n{}\ndata: ok\n\n", "data: abcdefgh\n".repeat(10));
    assert_eq!(run(&[lines.as_bytes()], Some(32)), expected);

    // An event right at the limit passes.
    let exact = format!("data: {}\n\n", "y".repeat(31));
    assert_eq!(
        run(&[exact.as_bytes()], Some(32)).items,
        vec![msg(&"y".repeat(31))]
    );
}

#[test]
fn long_comments_are_skipped_without_counting() {
    let input = format!(":{}\ndata: ok\n\n", "c".repeat(10_000));
    let bytes: Vec<&[u8]> = input.as_bytes().chunks(7).collect();
    assert_eq!(run(&bytes, Some(16)).items, vec![msg("ok")]);
}

#[test]
fn finish_starts_a_new_stream_and_keeps_the_last_id() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 3\ndata: a\n\ndata: partial");
    assert!(matches!(decoder.decode(), Ok(Some(Decoded::Event(_)))));
    assert_eq!(decoder.decode(), Ok(None));
    decoder.finish();
    decoder.feed("\u{FEFF}data: b\n\n".as_bytes());
    match decoder.decode() {
        Ok(Some(Decoded::Event(e))) => {
            assert_eq!((e.data(), e.last_event_id()), ("b", "3"))
        }
        other => panic!("unexpected {other:?}"),
    }
}
