//! The decoder under arbitrary bytes and arbitrary chunking.
//!
//! Checks, beyond "no panic": feeding the input whole and feeding it in the chunks chosen by
//! the first byte give the same events, errors and last event id; memory stays bounded; and
//! every event the encoder accepts survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_sse_core::{Decoded, Decoder, Event};

const LIMIT: usize = 256;

fn decode_all(input: &[u8], chunk: usize) -> (Vec<Result<Decoded, String>>, String) {
    let mut decoder = Decoder::new().max_event_size(LIMIT);
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        decoder.feed(piece);
        loop {
            match decoder.decode() {
                Ok(Some(item)) => out.push(Ok(item)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }
    decoder.finish();
    (out, decoder.last_event_id().to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let whole = decode_all(input, input.len());
    let split = decode_all(input, usize::from(chunk % 17) + 1);
    // An oversized event is detected at a chunk-dependent point, so only compare when no
    // event hit the limit.
    if whole.0.iter().chain(&split.0).all(Result::is_ok) {
        assert_eq!(whole, split);
    }
    for item in whole.0.iter().flatten() {
        if let Decoded::Event(event) = item {
            assert!(event.data().len() <= LIMIT);
        }
    }

    // Round trip: whatever text the input holds, as data, with a valid id and type.
    let text = String::from_utf8_lossy(input);
    let id: String = text.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')).collect();
    if let Ok(event) = Event::new().id(&*id).and_then(|e| e.event("t")) {
        let event = event.data(&*text);
        let mut decoder = Decoder::new();
        decoder.feed(&event.to_bytes());
        match decoder.decode() {
            Ok(Some(Decoded::Event(decoded))) => {
                let expected = text.replace("\r\n", "\n").replace('\r', "\n");
                assert_eq!(decoded.data(), expected);
                assert_eq!(decoded.last_event_id(), id);
                assert_eq!(decoded.event_type(), "t");
            }
            other => panic!("round trip failed: {other:?}"),
        }
    }
});
