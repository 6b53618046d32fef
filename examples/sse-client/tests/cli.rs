//! The `sse-client` binary end to end, against a scripted server on loopback.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Output, Stdio},
    thread,
    time::Duration,
};

/// Reads one request head (and its body, by Content-Length); returns (head, body).
fn read_request(stream: &mut TcpStream) -> (String, String) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (head.to_ascii_lowercase(), String::from_utf8(body).unwrap())
}

/// Serves `responses` in order, one per connection (each closes after its bytes), and
/// returns the requests seen; then keeps accepting and counting for a short while.
fn serve(responses: Vec<&'static str>) -> (String, thread::JoinHandle<Vec<(String, String)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        for response in responses {
            let (mut stream, _) = listener.accept().unwrap();
            seen.push(read_request(&mut stream));
            stream.write_all(response.as_bytes()).unwrap();
        }
        // Any further connection is recorded too (there should be none).
        listener.set_nonblocking(true).unwrap();
        thread::sleep(Duration::from_millis(300));
        while let Ok((mut stream, _)) = listener.accept() {
            stream.set_nonblocking(false).unwrap();
            seen.push(read_request(&mut stream));
        }
        seen
    });
    (url, handle)
}

fn run(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_sse-client"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

#[test]
fn prints_events_reconnects_with_last_event_id_and_stops_after_max_events() {
    let first: &'static str = Box::leak(
        format!("{OK}retry: 10\nid: 1\nevent: greet\ndata: hello\ndata: world\n\ndata: \u{20ac}\n\nid: 2\ndata: cut").into_boxed_str(),
    );
    let second: &'static str =
        Box::leak(format!("{OK}data: again\n\ndata: more\n\n").into_boxed_str());
    let (url, server) = serve(vec![first, second]);
    let out = run(&[&url, "--max-events", "3"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        concat!(
            r#"{"type":"greet","data":"hello\nworld","last_event_id":"1"}"#,
            "\n",
            r#"{"type":"message","data":"€","last_event_id":"1"}"#,
            "\n",
            r#"{"type":"message","data":"again","last_event_id":"1"}"#,
            "\n",
        )
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");
    let requests = server.join().unwrap();
    assert_eq!(requests.len(), 2);
    assert!(!requests[0].0.contains("last-event-id"));
    assert!(
        requests[1].0.contains("last-event-id: 1\r\n"),
        "{}",
        requests[1].0
    );
}

#[test]
fn sends_method_data_headers_and_initial_last_event_id_and_exits_0_on_204() {
    let (url, server) = serve(vec![
        "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ]);
    let out = run(&[
        &url,
        "--method",
        "POST",
        "--data",
        "{\"q\":1}",
        "--header",
        "Content-Type: application/json",
        "--header",
        "X-Token: t",
        "--last-event-id",
        "41",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let requests = server.join().unwrap();
    assert_eq!(requests.len(), 1, "a 204 is never retried");
    let (head, body) = &requests[0];
    assert!(head.starts_with("post /events http/1.1\r\n"), "{head}");
    for line in [
        "content-type: application/json\r\n",
        "x-token: t\r\n",
        "last-event-id: 41\r\n",
        "accept: text/event-stream\r\n",
    ] {
        assert!(head.contains(line), "{line} missing in {head}");
    }
    assert_eq!(body, "{\"q\":1}");
}

#[test]
fn a_4xx_or_a_wrong_content_type_exits_1_with_one_line_and_no_retry() {
    let cases = [
        (
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "404",
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
            "text/html",
        ),
    ];
    for (response, needle) in cases {
        let (url, server) = serve(vec![response]);
        let out = run(&[&url]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(server.join().unwrap().len(), 1, "not retried");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}
