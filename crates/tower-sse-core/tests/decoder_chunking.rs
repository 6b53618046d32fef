//! The decoder against a plain reading of the WHATWG algorithm, on hostile byte streams in any
//! chunking: whole, one byte at a time, and arbitrary cuts (events cut by chunk boundaries,
//! CRLF split, UTF-8 split, invalid UTF-8, NUL, BOM).

use proptest::prelude::*;
use tower_sse_core::{DecodeError, Decoded, Decoder};

#[derive(Debug, PartialEq)]
enum Item {
    Event {
        event_type: String,
        data: String,
        last_event_id: String,
    },
    Retry(u128),
    TooLarge,
}

/// What the decoder gives for `input` fed in pieces of the sizes in `cuts` (cycled).
fn decode(input: &[u8], cuts: &[usize], max: usize) -> (Vec<Item>, String) {
    let mut decoder = Decoder::new().max_event_size(max);
    let mut items = Vec::new();
    let mut rest = input;
    for &cut in cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(cut.clamp(1, rest.len()));
        rest = tail;
        decoder.feed(piece);
        loop {
            match decoder.decode() {
                Ok(Some(Decoded::Event(e))) => items.push(Item::Event {
                    event_type: e.event_type().to_owned(),
                    data: e.data().to_owned(),
                    last_event_id: e.last_event_id().to_owned(),
                }),
                Ok(Some(Decoded::Retry(r))) => items.push(Item::Retry(r.as_millis())),
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Ok(None) => break,
                Err(DecodeError::EventTooLarge { .. }) => items.push(Item::TooLarge),
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    decoder.finish();
    (items, decoder.last_event_id().to_owned())
}

/// The WHATWG algorithm read literally: decode the whole stream as UTF-8 with replacement,
/// strip one BOM, split into lines (CRLF, CR, LF; an unterminated last line is dropped), and
/// interpret each line.
fn reference(input: &[u8]) -> (Vec<Item>, String) {
    let text = String::from_utf8_lossy(input);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    let (mut items, mut data, mut event_type) = (Vec::new(), String::new(), String::new());
    let (mut id_buffer, mut last_event_id) = (String::new(), String::new());
    for line in lines {
        if line.is_empty() {
            last_event_id.clone_from(&id_buffer);
            if !data.is_empty() {
                data.pop(); // the last LF
                items.push(Item::Event {
                    event_type: if event_type.is_empty() {
                        "message".to_owned()
                    } else {
                        event_type.clone()
                    },
                    data: std::mem::take(&mut data),
                    last_event_id: last_event_id.clone(),
                });
            }
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let millis: u128 = value.parse().unwrap_or(u128::MAX);
                items.push(Item::Retry(millis.min(u128::from(u64::MAX))));
            }
            _ => {}
        }
    }
    (items, last_event_id)
}

fn token() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![
        &b"data"[..],
        b"data: ",
        b"data:",
        b"id",
        b"id: ",
        b"event: ",
        b"retry: ",
        b"retry:12",
        b":",
        b" ",
        b"\n",
        b"\n\n",
        b"\r",
        b"\r\n",
        b"x",
        b"hello world",
        b"7",
        "\u{e9}".as_bytes(),
        "\u{20ac}".as_bytes(),
        b"\xE2\x82",
        b"\xFF",
        b"\0",
        b"\xEF\xBB\xBF",
    ])
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(token(), 0..60).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn any_chunking_decodes_as_the_reference(
        input in stream(),
        cuts in prop::collection::vec(1usize..24, 1..8),
    ) {
        let want = reference(&input);
        prop_assert_eq!(&decode(&input, &[input.len()], 1 << 20), &want, "whole");
        prop_assert_eq!(&decode(&input, &[1], 1 << 20), &want, "byte at a time");
        prop_assert_eq!(&decode(&input, &cuts, 1 << 20), &want, "cut {:?}", cuts);
    }

    #[test]
    fn a_small_limit_gives_the_same_events_in_any_chunking(
        input in stream(),
        cuts in prop::collection::vec(1usize..24, 1..8),
        max in 1usize..40,
    ) {
        let whole = decode(&input, &[input.len()], max);
        let cut = decode(&input, &cuts, max);
        // Where an oversized event is noticed depends on the chunking; what is dispatched is
        // compared when nothing was too large.
        if !whole.0.contains(&Item::TooLarge) && !cut.0.contains(&Item::TooLarge) {
            prop_assert_eq!(&cut, &whole);
            prop_assert_eq!(&whole, &reference(&input));
        }
        for item in whole.0.iter().chain(&cut.0) {
            if let Item::Event { data, .. } = item {
                prop_assert!(data.len() <= max);
            }
        }
    }
}
