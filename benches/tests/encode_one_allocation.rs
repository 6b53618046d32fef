//! `Event::to_bytes` makes exactly one allocation, of exactly the encoded length, for every
//! kind of event; `Event::encode` into an empty buffer reserves once, exactly.
//!
//! A counting global allocator needs `unsafe`, which the library crates forbid, so this test
//! binary lives in the benches package (its `unsafe_code` lint is `deny`, allowed here). The
//! counters are per thread, so the test harness's own threads do not disturb them.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    time::Duration,
};

use bytes::BytesMut;
use tower_sse_core::Event;

// The encode bench's large shape (4,096 bytes of `data` in 33 lines, 4,320 bytes encoded).
#[path = "../benches/encoders/large_data.rs"]
mod large_data;

use large_data::large_data;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static REALLOCS: Cell<usize> = const { Cell::new(0) };
    static LAST_SIZE: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting this thread's calls that may take memory.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it
// upholds `GlobalAlloc`'s contract exactly when `System` does; the counters are thread-local
// `Cell`s with const initialisers, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        LAST_SIZE.with(|c| c.set(layout.size()));
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        LAST_SIZE.with(|c| c.set(layout.size()));
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, reallocations, size of the last allocation) made by `f` on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize, usize) {
    let (allocs, reallocs) = (ALLOCS.with(Cell::get), REALLOCS.with(Cell::get));
    let out = f();
    (
        out,
        ALLOCS.with(Cell::get) - allocs,
        REALLOCS.with(Cell::get) - reallocs,
        LAST_SIZE.with(Cell::get),
    )
}

fn events(large: &str, many_lines: &str, huge: &str) -> Vec<(&'static str, Event<'static>)> {
    let base = || Event::new().id("12345").unwrap().event("update").unwrap();
    vec![
        ("data only", Event::new().data("hello")),
        ("empty data", Event::new().data("")),
        ("event type only", Event::new().event("ping").unwrap()),
        ("empty id", Event::new().id("").unwrap()),
        (
            "retry only",
            Event::new().retry(Duration::from_millis(1500)),
        ),
        ("retry max", Event::new().retry(Duration::MAX)),
        (
            "retry under 1 ms",
            Event::new().retry(Duration::from_nanos(1)),
        ),
        ("comment only", Event::new().comment("keep-alive")),
        ("LF lines", Event::new().data("a\nb\nc")),
        ("CRLF lines", Event::new().data("a\r\nb\r\nc")),
        ("CR lines", Event::new().data("a\rb\rc")),
        ("LF CR is two breaks", Event::new().data("a\n\rb")),
        ("leading and trailing breaks", Event::new().data("\nx\n")),
        ("only breaks", Event::new().data("\r\n\n\r\r")),
        (
            "multi-line comment",
            Event::new().comment("a\r\nb\n").data("d"),
        ),
        (
            "every field",
            base()
                .retry(Duration::from_micros(2500))
                .comment("note\nmore")
                .data("x\r\ny"),
        ),
        ("unicode", Event::new().data("é\u{2028}\u{85}🦀\n🦀")),
        ("large: 4 KiB, 33 lines", base().data(large.to_owned())),
        ("1,000 lines", base().data(many_lines.to_owned())),
        ("1 MiB, 8,192 lines", Event::new().data(huge.to_owned())),
    ]
}

#[test]
fn to_bytes_allocates_once_exactly() {
    let large = large_data();
    let many_lines = "line\r\n".repeat(1000);
    let huge = format!("{}\n", "y".repeat(127)).repeat(8192);
    for (name, event) in events(&large, &many_lines, &huge) {
        let expected_len = {
            let mut buf = BytesMut::new();
            event.encode(&mut buf);
            buf.len()
        };
        let (bytes, allocs, reallocs, size) = counted(|| event.to_bytes());
        assert_eq!(bytes.len(), expected_len, "{name}");
        assert_eq!(
            (allocs, reallocs),
            (1, 0),
            "{name}: allocations, reallocations"
        );
        assert_eq!(
            size,
            bytes.len(),
            "{name}: the allocation is exactly the event"
        );
        if name.starts_with("large") {
            assert_eq!(bytes.len(), 4320);
        }

        // Into an empty buffer: one reservation (a `Vec` never allocates under 8 bytes).
        let (buf, allocs, reallocs, _) = counted(|| {
            let mut buf = BytesMut::new();
            event.encode(&mut buf);
            buf
        });
        assert_eq!((allocs, reallocs), (1, 0), "{name}: encode");
        assert_eq!(
            buf.capacity(),
            buf.len().max(8),
            "{name}: encode's reservation"
        );

        // Into a buffer with room: nothing.
        let mut roomy = BytesMut::with_capacity(expected_len + 100);
        let (_, allocs, reallocs, _) = counted(|| event.encode(&mut roomy));
        assert_eq!(
            (allocs, reallocs),
            (0, 0),
            "{name}: encode into a buffer with room"
        );
    }
}
