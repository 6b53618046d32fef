//! The test list of LaunchDarkly's `sse-contract-tests` (basic parsing, BOM, comments,
//! line endings, HTTP behaviour, reconnection), with every optional capability (bom,
//! comments, headers, last-event-id, post, report, read-timeout, restart,
//! server-directed-shutdown-request), written from their published spec against a scripted
//! loopback server that sends exact bytes and checks the request it got.

mod common;

use std::time::Duration;

use common::{Client, Seen, Server, builder, msg};
use tower_sse_client::{Error, Event, ReadyState};

/// An expected item: a message (type, data, id) or a comment.
#[derive(Debug, Clone, Copy)]
enum Want<'a> {
    M(&'a str, &'a str, &'a str),
    C(&'a str),
}

fn m(data: &str) -> Want<'_> {
    Want::M("message", data, "")
}

/// Sends `pieces` (each written separately, or re-chunked by `size`) on one connection and
/// checks that the client reports exactly `want`, in order.
async fn parse(pieces: &[&[u8]], size: Option<usize>, want: &[Want<'_>]) {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut conn = server.accept().await;
    conn.ok().await;
    let all: Vec<u8> = pieces.concat();
    match size {
        Some(size) => conn.chunks(&all, size).await,
        None => {
            for piece in pieces {
                conn.raw(piece).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    for (i, w) in want.iter().enumerate() {
        let got = client.event().await;
        match (w, &got) {
            (Want::M(t, d, id), Event::Message(_)) => {
                assert_eq!(
                    msg(&got),
                    (t.to_string(), d.to_string(), id.to_string()),
                    "item {i}"
                );
            }
            (Want::C(c), Event::Comment(got)) => assert_eq!(got, c, "item {i}"),
            _ => panic!("item {i}: wanted {w:?}, got {got:?}"),
        }
    }
    // Nothing more: the stream ends when the server closes, with no further event.
    conn.break_connection();
    match client.next().await {
        Seen::Error(Error::StreamEnded, ReadyState::Connecting) => {}
        other => panic!("expected only {want:?}, then the end; got {other:?}"),
    }
}

async fn one(input: &str, want: &[Want<'_>]) {
    parse(&[input.as_bytes()], None, want).await;
}

// ---- basic parsing ----

#[tokio::test]
async fn one_line_message_in_one_chunk() {
    one("data: Hello\n\n", &[m("Hello")]).await;
}

#[tokio::test]
async fn two_messages_spanning_3_chunks_with_shared_chunk() {
    parse(
        &[b"data: test", b"test\n\ndata:", b"test\n\n"],
        None,
        &[m("testtest"), m("test")],
    )
    .await;
}

fn random_text(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [(x % 64) as usize],
            )
        })
        .collect()
}

#[tokio::test]
async fn large_message_in_one_chunk() {
    let data = random_text(5 << 20, 1);
    one(&format!("data: {data}\n\n"), &[m(&data)]).await;
}

#[tokio::test]
async fn large_message_in_two_chunks() {
    let (a, b) = (random_text(5 << 20, 2), random_text(5 << 20, 3));
    let first = format!("data: {a}");
    let second = format!("{b}\n\n");
    let whole = format!("{a}{b}");
    parse(&[first.as_bytes(), second.as_bytes()], None, &[m(&whole)]).await;
}

#[tokio::test]
async fn one_line_message_in_two_chunks() {
    parse(&[b"data: Hel", b"lo\n\n"], None, &[m("Hello")]).await;
}

#[tokio::test]
async fn two_one_line_messages_in_one_chunk() {
    one("data: Hello\n\ndata: World\n\n", &[m("Hello"), m("World")]).await;
}

#[tokio::test]
async fn one_two_line_message_in_one_chunk() {
    one("data: Hello\ndata:World\n\n", &[m("Hello\nWorld")]).await;
}

#[tokio::test]
async fn empty_data() {
    one("data:\n\n", &[m("")]).await;
}

#[tokio::test]
async fn event_with_specific_type_and_default_type() {
    one(
        "event: greeting\ndata: Hello\n\n",
        &[Want::M("greeting", "Hello", "")],
    )
    .await;
    one("data: Hello\n\n", &[Want::M("message", "Hello", "")]).await;
}

#[tokio::test]
async fn event_with_id_and_with_type_and_id() {
    one(
        "id: abc\ndata: Hello\n\n",
        &[Want::M("message", "Hello", "abc")],
    )
    .await;
    one(
        "event: greeting\nid: abc\ndata: Hello\n\n",
        &[Want::M("greeting", "Hello", "abc")],
    )
    .await;
}

#[tokio::test]
async fn id_field_is_ignored_if_it_contains_a_null() {
    one("id: a\0bc\ndata: Hello\n\n", &[m("Hello")]).await;
}

#[tokio::test]
async fn last_id_persists_if_not_overridden() {
    parse(
        &[b"id: abc\ndata: first\n\n", b"data: second\n\n"],
        None,
        &[
            Want::M("message", "first", "abc"),
            Want::M("message", "second", "abc"),
        ],
    )
    .await;
}

#[tokio::test]
async fn last_id_can_be_overridden_by_an_empty_value() {
    parse(
        &[b"id: abc\ndata: first\n\n", b"id: \ndata: second\n\n"],
        None,
        &[Want::M("message", "first", "abc"), m("second")],
    )
    .await;
}

#[tokio::test]
async fn fields_in_reverse_order_unknown_fields_and_spacing() {
    one(
        "data: Hello\nid: abc\nevent: greeting\n\n",
        &[Want::M("greeting", "Hello", "abc")],
    )
    .await;
    one(
        "event: greeting\ncolor: blue\ndata: Hello\n\n",
        &[Want::M("greeting", "Hello", "")],
    )
    .await;
    one(
        "event:greeting\ndata:Hello\n\n",
        &[Want::M("greeting", "Hello", "")],
    )
    .await;
    one(
        "event:  greeting\ndata:  Hello\n\n",
        &[Want::M(" greeting", " Hello", "")],
    )
    .await;
}

#[tokio::test]
async fn field_with_no_colon() {
    one("data\n\ndata\ndata\n\n", &[m(""), m("\n")]).await;
}

#[tokio::test]
async fn multi_byte_characters_whole_and_in_single_byte_pieces() {
    one("data: €豆腐\n\n", &[m("€豆腐")]).await;
    parse(&["data: €豆腐\n\n".as_bytes()], Some(1), &[m("€豆腐")]).await;
}

#[tokio::test]
async fn many_messages_in_rapid_succession() {
    let input: String = (0..100).map(|i| format!("data: message {i}\n\n")).collect();
    let datas: Vec<String> = (0..100).map(|i| format!("message {i}")).collect();
    let want: Vec<Want<'_>> = datas.iter().map(|d| m(d)).collect();
    one(&input, &want).await;
}

// ---- BOM ----

const BOM: &str = "\u{FEFF}";

#[tokio::test]
async fn bom_at_start_is_stripped() {
    one(&format!("{BOM}data: Hello\n\n"), &[m("Hello")]).await;
    one(
        &format!("{BOM}event: greeting\nid: abc\ndata: Hello\n\n"),
        &[Want::M("greeting", "Hello", "abc")],
    )
    .await;
    one(
        &format!("{BOM}data: First\n\ndata: Second\n\n"),
        &[m("First"), m("Second")],
    )
    .await;
    one(
        &format!("{BOM}data: Line1\ndata: Line2\n\n"),
        &[m("Line1\nLine2")],
    )
    .await;
    one(&format!("{BOM}data:\n\n"), &[m("")]).await;
    one("data: Hello\n\n", &[m("Hello")]).await;
}

#[tokio::test]
async fn bom_only_stripped_at_stream_start() {
    let later = format!("data: {BOM}Second\n\n");
    let data = format!("{BOM}Second");
    parse(
        &[b"data: First\n\n", later.as_bytes()],
        None,
        &[m("First"), m(&data)],
    )
    .await;
    let twice = format!("{BOM}data: {BOM}Hello\n\n");
    one(&twice, &[m(&format!("{BOM}Hello"))]).await;
}

#[tokio::test]
async fn bom_split_across_chunks() {
    parse(&[b"\xEF\xBB", b"\xBFdata: Hello\n\n"], None, &[m("Hello")]).await;
    parse(
        &[b"\xEF", b"\xBB", b"\xBF", b"data: Hello\n\n"],
        None,
        &[m("Hello")],
    )
    .await;
}

#[tokio::test]
async fn bom_with_comment_at_start() {
    one(
        &format!("{BOM}:comment\ndata: Hello\n\n"),
        &[Want::C("comment"), m("Hello")],
    )
    .await;
}

// ---- comments ----

#[tokio::test]
async fn comments_are_reported() {
    one(":Hello\n", &[Want::C("Hello")]).await;
    parse(
        &[b":Hello\n", b":World\n"],
        None,
        &[Want::C("Hello"), Want::C("World")],
    )
    .await;
    parse(
        &[b":Hello\n", b"data: Hello\n\n"],
        None,
        &[Want::C("Hello"), m("Hello")],
    )
    .await;
    parse(
        &[b"data: Hello\n\n", b":Hello\n"],
        None,
        &[m("Hello"), Want::C("Hello")],
    )
    .await;
}

// ---- line endings ----

async fn with_terminator(t: &str) {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("data: event 1{t}{t}"), vec!["event 1"]),
        (
            format!("data: event 1{t}{t}data: event 2 line 1{t}data: event 2 line 2{t}{t}"),
            vec!["event 1", "event 2 line 1\nevent 2 line 2"],
        ),
        (
            format!("data:{t}data: line2{t}data: line3{t}{t}"),
            vec!["\nline2\nline3"],
        ),
        (
            format!("data: line1{t}data:{t}data: line3{t}{t}"),
            vec!["line1\n\nline3"],
        ),
        (
            format!("data: event 1{t}{t}{t}data: event 2{t}{t}"),
            vec!["event 1", "event 2"],
        ),
        (
            format!("data: event 1{t}{t}{t}{t}data: event 2{t}{t}"),
            vec!["event 1", "event 2"],
        ),
    ];
    for (input, datas) in &cases {
        let want: Vec<Want<'_>> = datas.iter().map(|d| m(d)).collect();
        for size in [None, Some(1), Some(2)] {
            parse(&[input.as_bytes()], size, &want).await;
        }
    }
}

#[tokio::test]
async fn lf_separator() {
    with_terminator("\n").await;
}

#[tokio::test]
async fn crlf_separator() {
    with_terminator("\r\n").await;
}

#[tokio::test]
async fn cr_separator() {
    with_terminator("\r").await;
}

#[tokio::test]
async fn crlf_where_cr_ends_a_chunk() {
    parse(
        &[
            b"data: Hello\r",
            b"\ndata: World\r",
            b"\n\r\ndata: OK\r",
            b"\n",
            b"\r",
            b"\n",
        ],
        None,
        &[m("Hello\nWorld"), m("OK")],
    )
    .await;
}

// ---- HTTP behaviour ----

#[tokio::test]
async fn default_method_and_headers() {
    let mut server = Server::start().await;
    let _client = Client::start(builder(&server.url));
    let conn = server.accept().await;
    let r = &conn.request;
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/stream");
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("last-event-id"), None);
}

#[tokio::test]
async fn a_204_halts_reconnection() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    server.accept().await.respond("204 No Content", &[]).await;
    assert!(matches!(client.next().await, Seen::End));
    assert!(!server.connection_within(Duration::from_millis(500)).await);
}

#[tokio::test]
async fn client_follows_301_and_307_redirects() {
    for status in ["301 Moved Permanently", "307 Temporary Redirect"] {
        let mut target = Server::start().await;
        let mut redirector = Server::start().await;
        let mut client = Client::start(builder(&redirector.url));
        redirector
            .accept()
            .await
            .respond(status, &[("location", &target.url)])
            .await;
        let mut conn = target.accept().await;
        conn.ok().await;
        conn.raw(b"data: hello\n\n").await;
        assert_eq!(msg(&client.event().await).1, "hello");
    }
}

#[tokio::test]
async fn relative_redirect_keeps_method_and_body_on_307_and_drops_them_on_303() {
    let mut server = Server::start().await;
    let base = server.url.trim_end_matches("/stream").to_owned();
    let _client = Client::start(builder(&server.url).method("POST").body("q=1"));
    server
        .accept()
        .await
        .respond("307 Temporary Redirect", &[("location", "/moved")])
        .await;
    let conn = server.accept().await;
    assert_eq!(
        (&*conn.request.method, &*conn.request.target),
        ("POST", "/moved")
    );
    assert_eq!(conn.request.body, b"q=1");
    conn.respond("303 See Other", &[("location", &format!("{base}/other"))])
        .await;
    let conn = server.accept().await;
    assert_eq!(
        (&*conn.request.method, &*conn.request.target),
        ("GET", "/other")
    );
    assert!(conn.request.body.is_empty());
}

#[tokio::test]
async fn empty_or_missing_location_is_an_error_not_a_loop() {
    for status in ["301 Moved Permanently", "307 Temporary Redirect"] {
        for location in [Some(""), None] {
            let mut server = Server::start().await;
            let mut client = Client::start(builder(&server.url));
            let headers: Vec<(&str, &str)> =
                location.map(|l| ("location", l)).into_iter().collect();
            server.accept().await.respond(status, &headers).await;
            let (error, state) = client.error().await;
            assert!(matches!(error, Error::Redirect(_)), "{error}");
            assert_eq!(state, ReadyState::Closed);
            assert!(!server.connection_within(Duration::from_millis(200)).await);
        }
    }
}

#[tokio::test]
async fn redirect_loops_are_bounded() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url).max_redirects(3));
    for _ in 0..4 {
        server
            .accept()
            .await
            .respond("302 Found", &[("location", "/stream")])
            .await;
    }
    let (error, state) = client.error().await;
    assert!(
        error.to_string().contains("more than 3 redirects"),
        "{error}"
    );
    assert_eq!(state, ReadyState::Closed);
}

#[tokio::test]
async fn custom_headers() {
    let mut server = Server::start().await;
    let _client = Client::start(
        builder(&server.url)
            .header("header-name-1", "value-1")
            .header("header-name-2", "value-2"),
    );
    let r = server.accept().await.request;
    assert_eq!(r.header("header-name-1"), Some("value-1"));
    assert_eq!(r.header("header-name-2"), Some("value-2"));
}

#[tokio::test]
async fn post_and_report_requests_with_body() {
    for method in ["POST", "REPORT"] {
        let mut server = Server::start().await;
        let body = r#"{"hello": "world"}"#;
        let _client = Client::start(
            builder(&server.url)
                .method(method)
                .header("content-type", "application/json; charset=utf-8")
                .body(body),
        );
        let r = server.accept().await.request;
        assert_eq!(r.method, method);
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(r.body, body.as_bytes());
    }
}

#[tokio::test]
async fn sends_last_event_id_in_initial_request_if_set() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url).last_event_id("abc"));
    let mut conn = server.accept().await;
    assert_eq!(conn.request.header("last-event-id"), Some("abc"));
    // treated as if received: carried by events without an id
    conn.ok().await;
    conn.raw(b"data: x\n\n").await;
    assert_eq!(msg(&client.event().await).2, "abc");
}

#[tokio::test]
async fn status_4xx_is_a_typed_error_not_retried() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    server.accept().await.respond("404 Not Found", &[]).await;
    let (error, state) = client.error().await;
    assert_eq!(error.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(state, ReadyState::Closed);
    assert!(matches!(client.next().await, Seen::End));
    assert!(!server.connection_within(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn status_5xx_is_retried() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    server
        .accept()
        .await
        .respond("503 Service Unavailable", &[])
        .await;
    let (error, state) = client.error().await;
    assert_eq!(error.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(state, ReadyState::Connecting);
    let mut conn = server.accept().await;
    conn.ok().await;
    conn.raw(b"data: back\n\n").await;
    assert_eq!(msg(&client.event().await).1, "back");
}

#[tokio::test]
async fn wrong_content_type_is_a_typed_error_not_retried() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    server
        .accept()
        .await
        .respond("200 OK", &[("content-type", "text/html")])
        .await;
    let (error, state) = client.error().await;
    assert!(
        matches!(&error, Error::ContentType(Some(v)) if v == "text/html"),
        "{error}"
    );
    assert_eq!(state, ReadyState::Closed);
    assert!(!server.connection_within(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn retry_limit_ends_the_stream() {
    let mut server = Server::start().await;
    let policy = tower_sse_client::RetryPolicy::default()
        .initial_delay(Duration::ZERO)
        .max_retries(2);
    let mut client = Client::start(builder(&server.url).retry(policy));
    for expected in [
        ReadyState::Connecting,
        ReadyState::Connecting,
        ReadyState::Closed,
    ] {
        server
            .accept()
            .await
            .respond("500 Internal Server Error", &[])
            .await;
        assert_eq!(client.error().await.1, expected);
    }
    assert!(matches!(client.next().await, Seen::End));
}

// ---- reconnection ----

#[tokio::test]
async fn caller_can_trigger_a_restart() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    first.ok().await;
    first.raw(b"data: Hello\n\n").await;
    assert_eq!(msg(&client.event().await).1, "Hello");
    client.restart();
    let mut second = server.accept().await;
    second.ok().await;
    second.raw(b"data: Thanks\n\n").await;
    assert_eq!(msg(&client.event().await).1, "Thanks");
}

#[tokio::test]
async fn sends_id_of_last_received_event() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    assert_eq!(first.request.header("last-event-id"), None);
    first.ok().await;
    first.raw(b"id: abc\ndata: Hello\n\n").await;
    assert_eq!(
        msg(&client.event().await),
        ("message".into(), "Hello".into(), "abc".into())
    );
    first.break_connection();
    let second = server.accept().await;
    assert_eq!(second.request.header("last-event-id"), Some("abc"));
}

#[tokio::test]
async fn sends_id_of_last_event_that_had_one() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    first.ok().await;
    first.raw(b"id: abc\ndata: Hello\n\ndata: World\n\n").await;
    assert_eq!(msg(&client.event().await).2, "abc");
    assert_eq!(
        msg(&client.event().await),
        ("message".into(), "World".into(), "abc".into())
    );
    first.break_connection();
    assert_eq!(
        server.accept().await.request.header("last-event-id"),
        Some("abc")
    );
}

#[tokio::test]
async fn last_event_id_can_be_overridden_with_an_empty_value() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    first.ok().await;
    first
        .raw(b"id: abc\ndata: Hello\n\nid: \ndata: World\n\n")
        .await;
    assert_eq!(msg(&client.event().await).2, "abc");
    assert_eq!(msg(&client.event().await).2, "");
    first.break_connection();
    assert_eq!(server.accept().await.request.header("last-event-id"), None);
}

#[tokio::test]
async fn resends_request_body_when_reconnecting() {
    let mut server = Server::start().await;
    let body = r#"{"hello": "world"}"#;
    let _client = Client::start(
        builder(&server.url)
            .method("POST")
            .header("content-type", "application/json; charset=utf-8")
            .body(body),
    );
    let first = server.accept().await;
    assert_eq!(
        (&*first.request.method, &*first.request.body),
        ("POST", body.as_bytes())
    );
    first.break_connection();
    let second = server.accept().await;
    assert_eq!(
        (&*second.request.method, &*second.request.body),
        ("POST", body.as_bytes())
    );
    assert_eq!(
        second.request.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

#[tokio::test]
async fn can_set_read_timeout() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url).read_timeout(Duration::from_millis(300)));
    let mut first = server.accept().await;
    first.ok().await;
    first.raw(b"data: Hello\n\n").await;
    assert_eq!(msg(&client.event().await).1, "Hello");
    let (error, state) = client.error().await;
    assert!(matches!(error, Error::ReadTimeout(_)), "{error}");
    assert_eq!(state, ReadyState::Connecting);
    let _second = server.accept().await;
    drop(first);
}

#[tokio::test]
async fn discards_partial_messages_on_retry() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    first.ok().await;
    first
        .raw(b"id: abc\ndata: Hello\n\nid: def\ndata: Goodbye")
        .await;
    assert_eq!(
        msg(&client.event().await),
        ("message".into(), "Hello".into(), "abc".into())
    );
    first.break_connection();
    let mut second = server.accept().await;
    assert_eq!(second.request.header("last-event-id"), Some("abc"));
    second.ok().await;
    second.raw(b"data: We meet again\n\n").await;
    let event = client.ignore_error().await.unwrap();
    assert_eq!(
        msg(&event),
        ("message".into(), "We meet again".into(), "abc".into())
    );
}

#[tokio::test]
async fn new_connection_after_breaking_previous_is_functional() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    first.ok().await;
    first.raw(b"id: abc\ndata: Hello\n\n").await;
    assert_eq!(msg(&client.event().await).1, "Hello");
    first.break_connection();
    let mut second = server.accept().await;
    second.ok().await;
    second.raw(b"id: def\ndata: World\n\n").await;
    let event = client.ignore_error().await.unwrap();
    assert_eq!(
        msg(&event),
        ("message".into(), "World".into(), "def".into())
    );
}

#[tokio::test]
async fn server_retry_sets_the_reconnection_time() {
    let mut server = Server::start().await;
    let mut client = Client::start(builder(&server.url));
    let mut first = server.accept().await;
    first.ok().await;
    first.raw(b"retry: 200\ndata: x\n\n").await;
    client.event().await;
    let started = tokio::time::Instant::now();
    first.break_connection();
    let _second = server.accept().await;
    // at least the server's retry, whatever the jitter (an upper bound would be timing)
    assert!(started.elapsed() >= Duration::from_millis(200));
}
