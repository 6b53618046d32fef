//! `sse-decode`: reads an event stream on stdin and prints one JSON object per line for each
//! dispatched event, then one line at end of input with the last event id and the
//! reconnection time the stream set.
//!
//! Run with
//!
//! ```text
//! curl -sN http://127.0.0.1:3000/events | cargo run -p example-sse-decode
//! printf 'id: 1\ndata: hello\n\n' | cargo run -p example-sse-decode -- --chunk 1
//! ```
//!
//! Flags: `--chunk N` feeds the decoder N bytes at a time (default: whatever `read` returns);
//! `--max-event-size N` sets the decoder's limit in bytes (default 1 MiB). An oversized event
//! prints `{"error":"..."}` and decoding goes on with the next event. Output lines:
//!
//! ```text
//! {"type":"message","data":"hello","last_event_id":"1"}
//! {"eof":true,"last_event_id":"1","retry":null}
//! ```

use std::{
    io::{self, BufWriter, Read, Write},
    process::ExitCode,
};

use serde::Serialize;
use tower_sse_core::{DEFAULT_MAX_EVENT_SIZE, Decoded, Decoder};

#[derive(Debug)]
struct Options {
    chunk: Option<usize>,
    max_event_size: usize,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        chunk: None,
        max_event_size: DEFAULT_MAX_EVENT_SIZE,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            match value.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "{name} takes a positive whole number, not `{value}`"
                )),
            }
        };
        match arg.as_str() {
            "--chunk" => options.chunk = Some(number("--chunk")?),
            "--max-event-size" => options.max_event_size = number("--max-event-size")?,
            "-h" | "--help" => {
                return Err("usage: sse-decode [--chunk N] [--max-event-size N] < stream".into());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("sse-decode: {message}");
            return ExitCode::from(2);
        }
    };
    match decode(io::stdin().lock(), io::stdout().lock(), &options) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`| head`) is a normal way to stop.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sse-decode: {e}");
            ExitCode::FAILURE
        }
    }
}

fn decode(mut input: impl Read, output: impl Write, options: &Options) -> io::Result<()> {
    let mut out = BufWriter::new(output);
    let mut decoder = Decoder::new().max_event_size(options.max_event_size);
    let mut buf = vec![0; options.chunk.unwrap_or(64 * 1024)];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let pieces = buf[..n].chunks(options.chunk.unwrap_or(n));
        for piece in pieces {
            decoder.feed(piece);
            drain(&mut decoder, &mut out)?;
        }
        // Live streams: show each event as it arrives, not when the buffer fills.
        out.flush()?;
    }
    decoder.finish();
    let retry = decoder
        .retry()
        .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
    let eof = Line::Eof {
        eof: true,
        last_event_id: decoder.last_event_id(),
        retry,
    };
    writeln!(out, "{}", to_json(&eof))?;
    out.flush()
}

fn drain(decoder: &mut Decoder, out: &mut impl Write) -> io::Result<()> {
    loop {
        let line = match decoder.decode() {
            Ok(Some(Decoded::Event(event))) => to_json(&Line::Event {
                r#type: event.event_type(),
                data: event.data(),
                last_event_id: event.last_event_id(),
            }),
            // Reconnection-time updates are reported once, at end of input.
            Ok(Some(_)) => continue,
            Ok(None) => return Ok(()),
            Err(e) => to_json(&Line::Error {
                error: &e.to_string(),
            }),
        };
        writeln!(out, "{line}")?;
    }
}

/// One output line; a struct rather than `json!` so the keys keep this order.
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
    Eof {
        eof: bool,
        last_event_id: &'a str,
        retry: Option<u64>,
    },
}

fn to_json(line: &Line<'_>) -> String {
    serde_json::to_string(line).expect("strings and numbers always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], chunk: Option<usize>, max_event_size: usize) -> String {
        let mut out = Vec::new();
        let options = Options {
            chunk,
            max_event_size,
        };
        decode(input, &mut out, &options).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prints_events_and_eof() {
        let input = b"retry: 2500\nid: 1\nevent: greet\ndata: hello\ndata: world\n\ndata: \xff\n\nid: 2\ndata: cut";
        let expected = concat!(
            r#"{"type":"greet","data":"hello\nworld","last_event_id":"1"}"#,
            "\n",
            r#"{"type":"message","data":"�","last_event_id":"1"}"#,
            "\n",
            r#"{"eof":true,"last_event_id":"1","retry":2500}"#,
            "\n"
        );
        for chunk in [None, Some(1), Some(3)] {
            assert_eq!(run(input, chunk, DEFAULT_MAX_EVENT_SIZE), expected);
        }
    }

    #[test]
    fn oversized_event_prints_an_error_and_goes_on() {
        let input = b"data: 0123456789abcdef\n\ndata: ok\n\n";
        let out = run(input, Some(2), 8);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with(r#"{"error":"event larger than the 8-byte limit"#));
        assert_eq!(
            lines[1],
            r#"{"type":"message","data":"ok","last_event_id":""}"#
        );
        assert_eq!(lines[2], r#"{"eof":true,"last_event_id":"","retry":null}"#);
    }

    #[test]
    fn bad_flags_are_clear_errors() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        assert!(args(&["--chunk", "0"]).is_err());
        assert!(args(&["--chunk"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--bogus"]).unwrap_err().contains("unknown argument"));
        assert_eq!(args(&["--chunk", "4"]).unwrap().chunk, Some(4));
    }
}
