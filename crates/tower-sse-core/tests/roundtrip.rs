//! Property: for every event the encoder accepts, decoding its bytes gives the event back, in
//! any chunking, over an alphabet chosen to break naive encoders.

use std::time::Duration;

use proptest::prelude::*;
use tower_sse_core::{Decoded, Decoder, Event, FrameBoundary, MessageEvent};

/// Pieces that have broken SSE encoders: every line break, NUL, the field separator, leading
/// spaces, Unicode line separators that are *not* SSE line breaks, a BOM, multibyte text.
const HOSTILE: &[&str] = &[
    "\r", "\n", "\r\n", "\0", ":", " ", "  ", "\u{2028}", "\u{85}", "\u{FEFF}", "é", "🦀", "a",
    "data", "id", "retry", "event", "",
];

fn hostile_string() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(HOSTILE), 0..24).prop_map(|parts| parts.concat())
}

#[derive(Clone, Debug)]
struct Spec {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    comment: Option<String>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(hostile_string()),
        prop::option::of(hostile_string()),
        prop::option::of(hostile_string()),
        prop::option::of(any::<u64>()),
        prop::option::of(hostile_string()),
    )
        .prop_map(|(id, event, data, retry, comment)| Spec {
            id,
            event,
            data,
            retry,
            comment,
        })
}

/// Builds the event, or returns why the encoder refused it.
fn build(spec: &Spec) -> Result<Event<'_>, tower_sse_core::EventError> {
    let mut event = Event::new();
    if let Some(id) = &spec.id {
        event = event.id(id.as_str())?;
    }
    if let Some(ty) = &spec.event {
        event = event.event(ty.as_str())?;
    }
    if let Some(data) = &spec.data {
        event = event.data(data.as_str());
    }
    if let Some(retry) = spec.retry {
        event = event.retry(Duration::from_millis(retry));
    }
    if let Some(comment) = &spec.comment {
        event = event.comment(comment.as_str());
    }
    Ok(event)
}

fn has_forbidden(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| s.contains(['\r', '\n', '\0']))
}

/// What a browser should see for `specs` sent in order on one stream.
fn expected(specs: &[Spec]) -> (Vec<Decoded>, String) {
    let mut items = Vec::new();
    let mut last_id = String::new();
    for spec in specs {
        if let Some(retry) = spec.retry {
            items.push(Decoded::Retry(Duration::from_millis(retry)));
        }
        if let Some(id) = &spec.id {
            last_id.clone_from(id);
        }
        if spec.data.is_some() || spec.event.is_some() {
            let data = spec
                .data
                .as_deref()
                .unwrap_or("")
                .replace("\r\n", "\n")
                .replace('\r', "\n");
            let ty = match spec.event.as_deref() {
                None | Some("") => "message".to_owned(),
                Some(ty) => ty.to_owned(),
            };
            items.push(event_item(ty, data, last_id.clone()));
        }
    }
    (items, last_id)
}

fn event_item(event_type: String, data: String, last_event_id: String) -> Decoded {
    Decoded::Event(MessageEvent::new(&event_type, &data, &last_event_id))
}

fn decode(bytes: &[u8], chunk: usize) -> (Vec<Decoded>, String) {
    let mut decoder = Decoder::new();
    let mut items = Vec::new();
    for piece in bytes.chunks(chunk) {
        decoder.feed(piece);
        while let Some(item) = decoder.decode().expect("no event is oversized") {
            items.push(item);
        }
    }
    decoder.finish();
    (items, decoder.last_event_id().to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn encoder_rejects_exactly_the_forbidden_values(spec in spec()) {
        let refused = has_forbidden(&spec.id) || has_forbidden(&spec.event);
        prop_assert_eq!(build(&spec).is_err(), refused);
    }

    #[test]
    fn decode_encode_is_identity(specs in prop::collection::vec(spec(), 1..4), chunk in 1usize..9) {
        let accepted: Vec<Spec> = specs.into_iter().filter(|s| build(s).is_ok()).collect();
        let mut wire = bytes::BytesMut::new();
        for spec in &accepted {
            build(spec).unwrap().encode(&mut wire);
        }
        prop_assert!(!wire.starts_with(b"\xEF\xBB\xBF"));
        prop_assert!(!wire.contains(&b'\r'));

        let want = expected(&accepted);
        prop_assert_eq!(&decode(&wire, wire.len().max(1)), &want);
        prop_assert_eq!(&decode(&wire, chunk), &want);

        // The tracker agrees that every encoded event ends between events.
        let mut tracker = FrameBoundary::new();
        // Every event ends with a blank line (an event with no field at all is just that).
        for spec in &accepted {
            let bytes = build(spec).unwrap().to_bytes();
            prop_assert!(bytes.ends_with(b"\n\n") || &bytes[..] == b"\n", "{:?}", bytes);
            tracker.observe(&bytes);
            prop_assert!(tracker.is_between_events());
        }
    }
}
