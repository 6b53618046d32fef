//! Generations over the in-memory hub and store, on a paused clock: idempotent start, the
//! terminal events, resume by id and by sequence number, 204 after the end, cancellation on
//! request and on idleness, bounds, batching and padding.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::StreamExt;
use tower_sse::{
    Hub,
    generation::{
        CancelOutcome, GenerationConfig, GenerationError, GenerationStream, Generations, Opened,
        Padding, Resume, TokenSink,
    },
};
use tower_sse_core::{Clock, Decoded, Decoder, MemoryClaimStore, MemoryLog, MessageEvent};

/// The store reads tokio's clock, so that TTLs follow the paused test clock.
struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

type Gens = Generations<MemoryLog, MemoryClaimStore<TokioClock>>;

fn generations(config: GenerationConfig) -> Gens {
    Generations::new(
        Hub::new(),
        MemoryClaimStore::with_clock(TokioClock, 1000),
        config,
    )
}

/// A producer of `n` tokens `t0`, `t1`, … spaced by `every`.
fn tokens(
    n: usize,
    every: Duration,
) -> impl FnOnce(TokenSink<MemoryLog>) -> futures_util::future::BoxFuture<'static, Result<(), String>>
{
    move |sink| {
        Box::pin(async move {
            for i in 0..n {
                tokio::time::sleep(every).await;
                sink.token(&format!("t{i}"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

async fn open(gens: &Gens, id: &str, resume: Resume<'_>) -> GenerationStream {
    match gens.open(id, resume).await.unwrap() {
        Opened::Stream(stream) => stream,
        _ => panic!("finished"),
    }
}

/// Every chunk written, until the stream ends.
async fn chunks(mut stream: GenerationStream) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.push(chunk.unwrap());
    }
    out
}

fn decode(chunks: &[Bytes]) -> Vec<MessageEvent> {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        while let Some(item) = decoder.decode().unwrap() {
            if let Decoded::Event(e) = item {
                events.push(e);
            }
        }
    }
    events
}

fn seq(event: &MessageEvent) -> u64 {
    let rest = event
        .data()
        .strip_prefix("{\"sequence_number\":")
        .unwrap_or_else(|| panic!("no sequence number in {:?}", event.data()));
    rest[..rest.find([',', '}']).unwrap()].parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_then_done_and_204_after_it() {
    let gens = generations(GenerationConfig::default());
    let started = gens
        .start(None, tokens(5, Duration::from_millis(10)))
        .await
        .unwrap();
    assert!(started.created);
    let events = decode(&chunks(open(&gens, &started.id, Resume::Start).await).await);
    let types: Vec<_> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, ["token", "token", "token", "token", "token", "done"]);
    assert_eq!(
        events.iter().map(seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(events[2].data(), r#"{"sequence_number":2,"text":"t2"}"#);
    assert_eq!(events[5].data(), r#"{"sequence_number":5,"status":"done"}"#);

    // At or after the terminal event: finished (204).
    let last = &events[5].last_event_id();
    assert!(matches!(
        gens.open(&started.id, Resume::AfterId(last)).await.unwrap(),
        Opened::Finished
    ));
    assert!(matches!(
        gens.open(&started.id, Resume::AfterSequence(5))
            .await
            .unwrap(),
        Opened::Finished
    ));
    assert!(matches!(
        gens.open(&started.id, Resume::AfterSequence(99))
            .await
            .unwrap(),
        Opened::Finished
    ));
    // Before it: the rest, ending with done.
    let rest = decode(&chunks(open(&gens, &started.id, Resume::AfterSequence(3)).await).await);
    assert_eq!(rest.iter().map(seq).collect::<Vec<_>>(), [4, 5]);
    let rest = decode(
        &chunks(
            open(
                &gens,
                &started.id,
                Resume::AfterId(events[1].last_event_id()),
            )
            .await,
        )
        .await,
    );
    assert_eq!(rest.iter().map(seq).collect::<Vec<_>>(), [2, 3, 4, 5]);
    // A fresh reader still gets the whole answer, until the retention ends.
    let again = decode(&chunks(open(&gens, &started.id, Resume::Start).await).await);
    assert_eq!(again, events);
    tokio::time::sleep(gens.config().retention + Duration::from_secs(1)).await;
    assert!(matches!(
        gens.open(&started.id, Resume::Start).await,
        Err(GenerationError::NotFound)
    ));
}

#[tokio::test(start_paused = true)]
async fn resume_mid_answer_misses_nothing_and_repeats_nothing() {
    let gens = generations(GenerationConfig::default());
    let id = gens
        .start(None, tokens(20, Duration::from_millis(10)))
        .await
        .unwrap()
        .id;
    let mut stream = open(&gens, &id, Resume::Start).await;
    let mut seen = Vec::new();
    while seen.len() < 7 {
        seen.extend(decode(&[stream.next().await.unwrap().unwrap()]));
    }
    drop(stream);
    tokio::time::sleep(Duration::from_millis(55)).await; // tokens go on meanwhile
    let last = seen.last().unwrap().last_event_id().to_owned();
    seen.extend(decode(
        &chunks(open(&gens, &id, Resume::AfterId(&last)).await).await,
    ));
    assert_eq!(
        seen.iter().map(seq).collect::<Vec<_>>(),
        (0..=20).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn one_producer_per_idempotency_key_even_when_started_at_once() {
    let gens = generations(GenerationConfig::default());
    let runs = Arc::new(AtomicUsize::new(0));
    let starts = (0..8).map(|_| {
        let runs = Arc::clone(&runs);
        let gens = gens.clone();
        async move {
            gens.start(Some("same"), move |sink| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sink.token("x").await.map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .unwrap()
        }
    });
    let started = futures_util::future::join_all(starts).await;
    assert!(started.iter().all(|s| s.id == started[0].id));
    assert_eq!(started.iter().filter(|s| s.created).count(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Another key is another generation.
    let other = gens
        .start(Some("other"), |_| async { Ok(()) })
        .await
        .unwrap();
    assert_ne!(other.id, started[0].id);
}

#[tokio::test(start_paused = true)]
async fn cancel_on_request_stops_the_producer_and_ends_with_cancelled() {
    let gens = generations(GenerationConfig::default());
    let id = gens
        .start(None, tokens(1_000, Duration::from_millis(10)))
        .await
        .unwrap()
        .id;
    let stream = open(&gens, &id, Resume::Start).await;
    tokio::time::sleep(Duration::from_millis(35)).await;
    assert_eq!(gens.cancel(&id).await.unwrap(), CancelOutcome::Cancelled);
    let events = decode(&chunks(stream).await);
    let last = events.last().unwrap();
    assert_eq!(last.event_type(), "cancelled");
    assert!(
        last.data()
            .ends_with(r#""status":"cancelled","reason":"request"}"#)
    );
    assert!(events.len() < 10, "{} events", events.len());
    assert_eq!(gens.running(), 0);
    assert_eq!(
        gens.cancel(&id).await.unwrap(),
        CancelOutcome::AlreadyFinished
    );
}

#[tokio::test(start_paused = true)]
async fn idle_generations_are_cancelled_and_read_ones_are_not() {
    let config = GenerationConfig::default().idle_cancel(Some(Duration::from_secs(2)));
    let gens = generations(config);
    // Nobody reads this one.
    let idle = gens
        .start(None, tokens(1_000, Duration::from_millis(100)))
        .await
        .unwrap()
        .id;
    // This one has a reader throughout.
    let read = gens
        .start(None, tokens(60, Duration::from_millis(100)))
        .await
        .unwrap()
        .id;
    let reader = tokio::spawn(chunks(open(&gens, &read, Resume::Start).await));
    let events = decode(&reader.await.unwrap());
    assert_eq!(events.last().unwrap().event_type(), "done");
    assert_eq!(events.len(), 61);
    let idle_events = decode(&chunks(open(&gens, &idle, Resume::Start).await).await);
    let last = idle_events.last().unwrap();
    assert_eq!(last.event_type(), "cancelled");
    assert!(
        last.data().ends_with(r#""reason":"idle"}"#),
        "{}",
        last.data()
    );
    assert!(idle_events.len() < 40, "{}", idle_events.len());
}

#[tokio::test(start_paused = true)]
async fn producer_errors_and_panics_end_with_error() {
    let gens = generations(GenerationConfig::default());
    let failed = gens
        .start(None, |sink| async move {
            sink.token("a").await.map_err(|e| e.to_string())?;
            Err("model \"overloaded\"".to_owned())
        })
        .await
        .unwrap()
        .id;
    let events = decode(&chunks(open(&gens, &failed, Resume::Start).await).await);
    assert_eq!(events[1].event_type(), "error");
    assert_eq!(
        events[1].data(),
        r#"{"sequence_number":1,"status":"error","message":"model \"overloaded\""}"#
    );
    let panicked = gens
        .start(None, |_sink| async move { panic!("boom") })
        .await
        .unwrap()
        .id;
    let events = decode(&chunks(open(&gens, &panicked, Resume::Start).await).await);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type(), "error");
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_clearly() {
    let config = GenerationConfig::default().max_running(2).max_key_len(8);
    let gens = generations(config);
    assert!(matches!(
        gens.start(Some("123456789"), |_| async { Ok(()) }).await,
        Err(GenerationError::KeyTooLong { max: 8 })
    ));
    let a = gens
        .start(None, tokens(100, Duration::from_secs(1)))
        .await
        .unwrap();
    let b = gens
        .start(None, tokens(100, Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(matches!(
        gens.start(None, |_| async { Ok(()) }).await,
        Err(GenerationError::TooManyRunning { limit: 2 })
    ));
    // Unknown ids, numeric or not.
    for id in ["1", "0", "zzz", "", &"0".repeat(32), &"a".repeat(10_000)] {
        assert!(
            matches!(
                gens.open(id, Resume::Start).await,
                Err(GenerationError::NotFound)
            ),
            "{id}"
        );
        assert!(matches!(
            gens.cancel(id).await,
            Err(GenerationError::NotFound)
        ));
    }
    // A Last-Event-ID that is not a position of this generation.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = decode(&[open(&gens, &b.id, Resume::Start)
        .await
        .next()
        .await
        .unwrap()
        .unwrap()]);
    let foreign = events[0].last_event_id().to_owned();
    for cursor in [foreign.as_str(), "garbage", "1-1\n"] {
        assert!(
            matches!(
                gens.open(&a.id, Resume::AfterId(cursor)).await,
                Err(GenerationError::InvalidCursor)
            ),
            "{cursor:?}"
        );
    }
    assert!(matches!(
        Resume::from_request(None, Some("-1")),
        Err(GenerationError::InvalidCursor)
    ));
    assert_eq!(
        Resume::from_request(Some("x"), Some("3")).unwrap(),
        Resume::AfterId("x")
    );
    assert_eq!(
        Resume::from_request(Some(""), Some("3")).unwrap(),
        Resume::AfterSequence(3)
    );
    gens.cancel(&a.id).await.unwrap();
    gens.cancel(&b.id).await.unwrap();
    assert_eq!(gens.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn tokens_close_together_share_one_write() {
    let config = GenerationConfig::default().batch_window(Duration::from_millis(20));
    let gens = generations(config);
    // Ten bursts of five tokens 1 ms apart, the bursts 100 ms apart.
    let id = gens
        .start(None, |sink| async move {
            for burst in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                for i in 0..5 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    sink.token(&format!("{burst}.{i}"))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
        .await
        .unwrap()
        .id;
    let writes = chunks(open(&gens, &id, Resume::Start).await).await;
    let events = decode(&writes);
    assert_eq!(events.len(), 51);
    // One write per burst (the last one carries `done` too, or `done` alone).
    assert!((10..=11).contains(&writes.len()), "{} writes", writes.len());

    // Without a window, tokens spaced apart go out one by one.
    let gens = generations(GenerationConfig::default());
    let id = gens
        .start(None, tokens(10, Duration::from_millis(10)))
        .await
        .unwrap()
        .id;
    let writes = chunks(open(&gens, &id, Resume::Start).await).await;
    // `done` follows the last token at once, so it may share its write.
    assert!((10..=11).contains(&writes.len()), "{} writes", writes.len());
    for chunk in &writes[..9] {
        assert_eq!(decode(std::slice::from_ref(chunk)).len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn padding_brings_every_event_to_a_bucket_and_changes_no_event() {
    let buckets = [128, 256];
    let config = GenerationConfig::default().padding(Some(Padding::buckets(buckets.to_vec())));
    let padded = generations(config);
    let plain = generations(GenerationConfig::default());
    let texts = ["a", "a longer token", &"x".repeat(150), &"y".repeat(300)];
    let producer = |texts: Vec<String>| {
        move |sink: TokenSink<MemoryLog>| async move {
            for text in texts {
                tokio::time::sleep(Duration::from_millis(10)).await;
                sink.token(&text).await.map_err(|e| e.to_string())?;
            }
            // So that `done` gets a write of its own.
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        }
    };
    let owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let a = padded
        .start(None, producer(owned.clone()))
        .await
        .unwrap()
        .id;
    let b = plain.start(None, producer(owned)).await.unwrap().id;
    let (padded_stream, plain_stream) = (
        open(&padded, &a, Resume::Start).await,
        open(&plain, &b, Resume::Start).await,
    );
    let (padded_chunks, plain_chunks) = tokio::join!(chunks(padded_stream), chunks(plain_stream));
    assert_eq!(padded_chunks.len(), 5);
    for chunk in &padded_chunks {
        assert!(
            buckets.contains(&chunk.len()) || chunk.len() % 256 == 0,
            "{} bytes",
            chunk.len()
        );
    }
    let strip = |events: Vec<MessageEvent>| -> Vec<(String, String)> {
        events
            .into_iter()
            .map(|e| (e.event_type().into(), e.data().into()))
            .collect()
    };
    assert_eq!(strip(decode(&padded_chunks)), strip(decode(&plain_chunks)));
    // The two short tokens are indistinguishable by size.
    assert_eq!(padded_chunks[0].len(), padded_chunks[1].len());
    assert_ne!(plain_chunks[0].len(), plain_chunks[1].len());
}
