//! `sse-client`: follows an event stream over HTTP, reconnecting as a browser does, and prints
//! one JSON line per event on stdout, in the format of `sse-decode`.
//!
//! ```text
//! cargo run -p example-sse-client -- http://127.0.0.1:3000/events
//! cargo run -p example-sse-client -- URL [--method M] [--data STR] [--header 'K: V']...
//!     [--max-events N] [--last-event-id ID] [--max-event-size BYTES]
//! ```
//!
//! Output, one line per event:
//!
//! ```text
//! {"type":"message","data":"hello","last_event_id":"1"}
//! ```
//!
//! Each reconnection prints one line on stderr (why, and the wait). The program exits 0 after
//! `--max-events` events or when the server answers `204 No Content`, and exits 1 with a
//! one-line message on an error that is not retried: a 4xx status, a response that is not
//! `text/event-stream`, a bad redirect. An event over the maximum size (16 MiB by default)
//! prints `{"error":"..."}` and the stream goes on.

use std::{
    io::{self, Write},
    process::ExitCode,
};

use futures_util::StreamExt;
use serde::Serialize;
use tower_sse_client::{DEFAULT_MAX_EVENT_SIZE, Error, Event, EventSource, ReadyState};

#[derive(Debug, Default)]
struct Options {
    url: String,
    method: Option<String>,
    data: Option<String>,
    headers: Vec<(String, String)>,
    max_events: Option<u64>,
    last_event_id: Option<String>,
    max_event_size: Option<usize>,
}

const USAGE: &str = "usage: sse-client URL [--method M] [--data STR] [--header 'K: V']... \
                     [--max-events N] [--last-event-id ID] [--max-event-size BYTES]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--method" => options.method = Some(value("--method")?),
            "--data" => options.data = Some(value("--data")?),
            "--header" => {
                let header = value("--header")?;
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| format!("--header takes 'Name: value', not `{header}`"))?;
                options
                    .headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--max-events" => {
                let n = value("--max-events")?;
                options.max_events = Some(
                    n.parse()
                        .map_err(|_| format!("--max-events takes a whole number, not `{n}`"))?,
                );
            }
            "--last-event-id" => options.last_event_id = Some(value("--last-event-id")?),
            "--max-event-size" => {
                let n = value("--max-event-size")?;
                match n.parse() {
                    Ok(bytes) if bytes > 0 => options.max_event_size = Some(bytes),
                    _ => {
                        return Err(format!(
                            "--max-event-size takes a positive whole number, not `{n}`"
                        ));
                    }
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with("--") => {
                return Err(format!("unknown argument `{other}` (try --help)"));
            }
            other if url.is_none() => url = Some(other.to_owned()),
            other => return Err(format!("unexpected argument `{other}` (try --help)")),
        }
    }
    options.url = url.ok_or_else(|| USAGE.to_owned())?;
    Ok(options)
}

/// One output line; a struct rather than `json!` so the keys keep this order (as
/// `sse-decode` prints them).
#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Event {
        r#type: &'a str,
        data: &'a str,
        last_event_id: &'a str,
    },
    Error {
        error: &'a str,
    },
}

fn to_json(line: &Line<'_>) -> String {
    serde_json::to_string(line).expect("strings always serialize")
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("sse-client: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`| head`) is a normal way to stop.
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sse-client: {failure}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
enum Failure {
    Stream(Error),
    Io(io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream(e) => e.fmt(f),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

async fn run(options: Options) -> Result<(), Failure> {
    let mut builder = EventSource::builder(&options.url)
        .max_event_size(options.max_event_size.unwrap_or(DEFAULT_MAX_EVENT_SIZE));
    if let Some(method) = &options.method {
        builder = builder.method(method);
    }
    if let Some(data) = options.data {
        builder = builder.body(data);
    }
    for (name, value) in &options.headers {
        builder = builder.header(name, value);
    }
    if let Some(id) = options.last_event_id {
        builder = builder.last_event_id(id);
    }
    let mut source = builder.build().map_err(Failure::Stream)?;
    let mut out = io::stdout().lock();
    let mut printed = 0;
    if options.max_events == Some(0) {
        return Ok(());
    }
    while let Some(item) = source.next().await {
        match item {
            Ok(Event::Message(event)) => {
                let line = Line::Event {
                    r#type: event.event_type(),
                    data: event.data(),
                    last_event_id: event.last_event_id(),
                };
                writeln!(out, "{}", to_json(&line))?;
                out.flush()?;
                printed += 1;
                if options.max_events == Some(printed) {
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(e @ Error::EventTooLarge { .. }) => {
                writeln!(
                    out,
                    "{}",
                    to_json(&Line::Error {
                        error: &e.to_string()
                    })
                )?;
            }
            Err(e) if source.ready_state() == ReadyState::Closed => {
                return Err(Failure::Stream(e));
            }
            Err(e) => {
                let wait = source.reconnect_in().unwrap_or_default();
                let id = source.last_event_id();
                eprintln!(
                    "sse-client: {e}; reconnecting in {} ms with Last-Event-ID `{id}`",
                    wait.as_millis()
                );
            }
        }
    }
    // The stream ended without error: the server answered 204 No Content.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        let o = args(&[
            "http://x/",
            "--method",
            "POST",
            "--header",
            "A: b: c",
            "--header",
            "X:y",
            "--max-events",
            "3",
        ])
        .unwrap();
        assert_eq!(o.url, "http://x/");
        assert_eq!(
            o.headers,
            [("A".into(), "b: c".into()), ("X".into(), "y".into())]
        );
        assert_eq!(o.max_events, Some(3));
        assert!(args(&[]).unwrap_err().starts_with("usage"));
        assert!(args(&["u", "--header", "nocolon"]).is_err());
        assert!(args(&["u", "--max-events", "x"]).is_err());
        assert!(
            args(&["u", "--bogus"])
                .unwrap_err()
                .contains("unknown argument")
        );
        assert!(args(&["u", "v"]).unwrap_err().contains("unexpected"));
    }
}
