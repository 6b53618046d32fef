//! HTTP/1.1 on the wire, for the parts that must see raw bytes (the cutting proxy, the load
//! clients): reading a message head and undoing chunked transfer coding incrementally.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest message head accepted.
const MAX_HEAD: usize = 32 * 1024;

/// A request or response head: the start line and the header fields, in order.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    /// `GET /events HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub(crate) start: String,
    /// Header fields as sent (names as written).
    pub(crate) fields: Vec<(String, String)>,
}

impl Head {
    /// The first value of field `name` (case-insensitive).
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request target of a request head (`/events?x=1`).
    pub(crate) fn target(&self) -> &str {
        self.start.split(' ').nth(1).unwrap_or("")
    }

    /// The status code of a response head.
    pub(crate) fn status(&self) -> Option<u16> {
        self.start.split(' ').nth(1)?.parse().ok()
    }

    /// Whether the body uses chunked transfer coding.
    pub(crate) fn is_chunked(&self) -> bool {
        self.field("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    /// The head re-serialized, with `Connection` replaced by `connection`.
    pub(crate) fn to_bytes_with_connection(&self, connection: &str) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (name, value) in &self.fields {
            if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive")
            {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str(&format!("Connection: {connection}\r\n\r\n"));
        out.into_bytes()
    }
}

/// Reads a head from `io`; returns it with the bytes read past it. `Ok(None)` when the peer
/// closed before sending anything.
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<Option<(Head, Vec<u8>)>, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = io.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err("connection closed inside a message head".to_owned())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return parse_head(&buf).map(|head| Some((head, rest)));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("message head longer than {MAX_HEAD} bytes"));
        }
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "message head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let start = lines.next().ok_or("empty message head")?.to_owned();
    let fields = lines
        .map(|line| {
            line.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("bad header line {line:?}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Head { start, fields })
}

/// The first position of `needle` in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An incremental decoder of chunked transfer coding.
#[derive(Debug, Default)]
pub(crate) struct Dechunker {
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Inside chunk data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailer,
    /// The message body is complete.
    Done,
}

impl Dechunker {
    /// Decodes `input`, appending body bytes to `out`.
    pub(crate) fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size | ChunkState::Trailer | ChunkState::DataEnd => {
                    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > 1024 {
                            return Err("chunk line longer than 1 KiB".to_owned());
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&input[..lf]);
                    input = &input[lf + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = match self.state {
                        ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                        ChunkState::DataEnd => return Err("chunk data not followed by CRLF".into()),
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailer => ChunkState::Trailer,
                        _ => {
                            let size = std::str::from_utf8(line)
                                .ok()
                                .and_then(|l| l.split(';').next())
                                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                                .ok_or_else(|| format!("bad chunk size line {line:?}"))?;
                            if size == 0 {
                                ChunkState::Trailer
                            } else {
                                ChunkState::Data(size)
                            }
                        }
                    };
                }
                ChunkState::Data(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::Done => return Err("bytes after the last chunk".to_owned()),
            }
        }
        Ok(())
    }

    /// Whether the last chunk and the trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// `bytes` as one chunk of chunked transfer coding.
pub(crate) fn chunk(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Dechunker::default();
            let mut out = Vec::new();
            d.feed(&wire[..split], &mut out).unwrap();
            d.feed(&wire[split..], &mut out).unwrap();
            assert_eq!(out, b"hello, world");
            assert!(d.is_done());
        }
    }

    #[test]
    fn chunk_round_trips() {
        let mut d = Dechunker::default();
        let mut out = Vec::new();
        d.feed(&chunk(b"data: x\n\n"), &mut out).unwrap();
        assert_eq!(out, b"data: x\n\n");
        assert!(!d.is_done());
        assert!(d.feed(b"zz\r\n", &mut out).is_err());
    }

    #[tokio::test]
    async fn reads_a_head_and_keeps_the_rest() {
        let mut input: &[u8] = b"GET /events HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 7\r\n\r\nbody";
        let (head, rest) = read_head(&mut input).await.unwrap().unwrap();
        assert_eq!(head.target(), "/events");
        assert_eq!(head.field("last-event-id"), Some("7"));
        assert_eq!(rest, b"body");
        let bytes = head.to_bytes_with_connection("close");
        assert!(bytes.ends_with(b"Last-Event-ID: 7\r\nConnection: close\r\n\r\n"));
    }
}
