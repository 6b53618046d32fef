//! What the socket benchmarks (`fanout`, `idle`) share: the file-descriptor limit, client
//! source addresses, child processes with their CPU time and memory, and a cheap reader of
//! chunked event streams for clients that must leave the CPU to the server.
//!
//! Included by each of those binaries with `#[path]`; not every binary uses every item.
#![allow(dead_code)]

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{ExitCode, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines},
    net::{TcpSocket, TcpStream},
    process::{Child, ChildStdin, ChildStdout, Command},
};

/// Raises this process's `RLIMIT_NOFILE` soft limit towards `wanted`: the hard limit too when
/// the process may (`CAP_SYS_RESOURCE`), else up to the hard limit. Returns the soft limit now
/// in force and the hard limit, so that a caller can say when `wanted` was out of reach.
pub(crate) fn raise_nofile(wanted: u64) -> (u64, u64) {
    use rlimit::Resource;
    let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) else {
        return (0, 0);
    };
    if wanted > hard && rlimit::setrlimit(Resource::NOFILE, wanted, wanted).is_ok() {
        return (wanted, wanted);
    }
    let target = wanted.min(hard).max(soft);
    if rlimit::setrlimit(Resource::NOFILE, target, hard).is_ok() {
        (target, hard)
    } else {
        (soft, hard)
    }
}

/// Connects to `addr` from `127.0.0.{2 + i % sources}` (bind before connect), so that many
/// connections do not exhaust one source address's ephemeral ports (all of 127.0.0.0/8 is
/// loopback on Linux).
pub(crate) async fn connect_from(
    addr: SocketAddr,
    i: usize,
    sources: usize,
) -> io::Result<TcpStream> {
    let host = 2 + (i % sources.clamp(1, 250)) as u8;
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `GET path` and reads the response head; returns whatever followed the head in the
/// same reads. Fails unless the answer is `200` with chunked transfer coding.
pub(crate) async fn request_stream(stream: &mut TcpStream, path: &str) -> io::Result<Vec<u8>> {
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            return Err(io::Error::other(
                "the server closed before the response head",
            ));
        }
        head.extend_from_slice(&buf[..read]);
        if let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") {
            let rest = head.split_off(end + 4);
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            if !text.starts_with("http/1.1 200") || !text.contains("transfer-encoding: chunked") {
                return Err(io::Error::other(format!(
                    "unexpected response head: {text:?}"
                )));
            }
            return Ok(rest);
        }
        if head.len() > 16 * 1024 {
            return Err(io::Error::other("response head over 16 KiB"));
        }
    }
}

/// Microseconds since the Unix epoch: one clock for the server and client processes.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A child process (this same binary in another role), killed when dropped, whose stdout
/// is read line by line and whose stdin takes commands.
pub(crate) struct Role {
    child: Child,
    /// The child's stdin, for commands.
    pub(crate) stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// The child's process id.
    pub(crate) pid: u32,
}

impl Role {
    /// Starts this binary with `args`.
    pub(crate) fn spawn(args: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {args:?}: {e}"))?;
        let pid = child.id().ok_or("the child exited at once")?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            pid,
        })
    }

    /// The next line the child prints that starts with `prefix` (others are echoed), with the
    /// prefix and one space removed.
    pub(crate) async fn expect(
        &mut self,
        prefix: &str,
        within: Duration,
    ) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .map_err(|_| format!("no `{prefix}` line within {within:?}"))?
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the child exited before printing `{prefix}`"))?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_owned());
            }
            println!("  [child {}] {line}", self.pid);
        }
    }

    /// Sends one command line to the child.
    pub(crate) async fn send(&mut self, command: &str) -> Result<(), String> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|e| format!("command {command:?}: {e}"))
    }

    /// Kills the child and waits for it.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Reads lines from this process's stdin (on a thread of its own) and hands them to
/// `on_line` until stdin closes (the parent went away), then exits the process.
pub(crate) fn commands(mut on_line: impl FnMut(String) + Send + 'static) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(line) => on_line(line),
                Err(_) => break,
            }
        }
        std::process::exit(0);
    });
}

fn proc_file(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default()
}

/// A server process's runtime: two workers, as many as the 2-core machine has cores.
pub(crate) fn server_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// The exit status of `tool`'s child process in `role` (`serve`, `clients`): success, or the
/// error on stderr and status 1.
pub(crate) fn role_exit(tool: &str, role: Option<&str>, outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{tool} {}: {message}", role.unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}

/// `tool`'s controller, or status 2 with the reason on stderr when its arguments are bad.
pub(crate) fn run_parsed<S>(
    tool: &str,
    parsed: Result<S, String>,
    controller: impl FnOnce(&S) -> ExitCode,
) -> ExitCode {
    match parsed {
        Ok(settings) => controller(&settings),
        Err(message) => {
            eprintln!("{tool}: {message}");
            ExitCode::from(2)
        }
    }
}

/// Resident memory of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    proc_file(pid, "status")
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of `pid` (all its threads), in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = proc_file(pid, "stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Undoes HTTP/1.1 chunked transfer coding incrementally: any split of the input, the
/// payload handed out as slices of it (no copy).
#[derive(Debug, Default)]
pub(crate) struct Dechunker {
    state: ChunkState,
}

#[derive(Debug, Default)]
enum ChunkState {
    /// Reading the hex size (and any extension) up to LF.
    #[default]
    Size,
    SizeDigits(u64, bool),
    /// That many payload bytes to go.
    Data(u64),
    /// The CRLF after a chunk's payload: bytes still to skip.
    DataEnd(u8),
    /// The last chunk was read.
    Done,
}

impl Dechunker {
    /// Feeds `input`, handing each payload slice to `payload`.
    ///
    /// # Errors
    ///
    /// A malformed chunk size line.
    pub(crate) fn feed<'a>(
        &mut self,
        mut input: &'a [u8],
        mut payload: impl FnMut(&'a [u8]),
    ) -> Result<(), String> {
        while !input.is_empty() {
            match &mut self.state {
                ChunkState::Size => self.state = ChunkState::SizeDigits(0, false),
                ChunkState::SizeDigits(size, in_extension) => {
                    let byte = input[0];
                    input = &input[1..];
                    match byte {
                        b'\n' => {
                            self.state = if *size == 0 {
                                ChunkState::Done
                            } else {
                                ChunkState::Data(*size)
                            };
                        }
                        b'\r' => {}
                        _ if *in_extension => {}
                        b';' => *in_extension = true,
                        _ => {
                            let digit = (byte as char)
                                .to_digit(16)
                                .ok_or_else(|| format!("bad chunk size byte {byte:#x}"))?;
                            *size = size
                                .checked_mul(16)
                                .map(|s| s + u64::from(digit))
                                .ok_or("chunk size overflows")?;
                        }
                    }
                }
                ChunkState::Data(remaining) => {
                    let take = (*remaining).min(input.len() as u64) as usize;
                    payload(&input[..take]);
                    input = &input[take..];
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = ChunkState::DataEnd(2);
                    }
                }
                ChunkState::DataEnd(left) => {
                    input = &input[1..];
                    *left -= 1;
                    if *left == 0 {
                        self.state = ChunkState::Size;
                    }
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    /// Whether the terminating zero-size chunk was read.
    pub(crate) fn done(&self) -> bool {
        matches!(self.state, ChunkState::Done)
    }
}

/// Splits an event stream's payload into event blocks (ended by a blank line, LF only, as
/// every server measured here writes), carrying a partial block across calls.
#[derive(Debug, Default)]
pub(crate) struct BlockSplitter {
    carry: Vec<u8>,
}

impl BlockSplitter {
    /// The most a partial event may hold before the stream is declared broken.
    const MAX_CARRY: usize = 1 << 20;

    /// Feeds `payload`, handing each complete block (without its blank line) to `block`.
    ///
    /// # Errors
    ///
    /// An event larger than 1 MiB.
    pub(crate) fn feed(
        &mut self,
        payload: &[u8],
        mut block: impl FnMut(&[u8]),
    ) -> Result<(), String> {
        if self.carry.is_empty() {
            let used = split_blocks(payload, &mut block);
            self.carry.extend_from_slice(&payload[used..]);
        } else {
            self.carry.extend_from_slice(payload);
            let used = split_blocks(&self.carry, &mut block);
            self.carry.drain(..used);
        }
        if self.carry.len() > Self::MAX_CARRY {
            return Err("an event over 1 MiB".into());
        }
        Ok(())
    }
}

/// Hands out the complete blocks of `bytes`; returns how many bytes they took.
fn split_blocks(bytes: &[u8], block: &mut impl FnMut(&[u8])) -> usize {
    let mut start = 0;
    for end in memchr::memmem::find_iter(bytes, b"\n\n") {
        if end < start {
            // A third LF: an empty block, nothing to dispatch.
            continue;
        }
        block(&bytes[start..end]);
        start = end + 2;
    }
    start
}

/// The unsigned number after `key` in `block` (such as `"seq":` in JSON data).
pub(crate) fn number_after(block: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(block, key)? + key.len();
    let digits = block[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    block[at..at + digits].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every split of a chunked stream gives the same blocks.
    #[test]
    fn dechunk_and_split_any_chunking() {
        let mut wire = Vec::new();
        for (payload, extension) in [
            (&b":\n\n"[..], ""),
            (b"id: 1\ndata: {\"seq\":0,\"t\":5}\n\n", ""),
            (b"id: 2\ndata: {\"seq\":1,\"t\":66}\n\n", ";ext=1"),
        ] {
            wire.extend_from_slice(format!("{:x}{extension}\r\n", payload.len()).as_bytes());
            wire.extend_from_slice(payload);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        for split in 0..wire.len() {
            let mut dechunker = Dechunker::default();
            let mut splitter = BlockSplitter::default();
            let mut seqs = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                let mut payloads = Vec::new();
                dechunker.feed(part, |p| payloads.push(p)).unwrap();
                for p in payloads {
                    splitter
                        .feed(p, |b| {
                            seqs.push((number_after(b, b"\"seq\":"), number_after(b, b"\"t\":")))
                        })
                        .unwrap();
                }
            }
            assert!(dechunker.done(), "split at {split}");
            assert_eq!(
                seqs,
                [(None, None), (Some(0), Some(5)), (Some(1), Some(66))],
                "split at {split}"
            );
        }
    }

    #[test]
    fn bad_chunk_size_is_an_error() {
        let mut dechunker = Dechunker::default();
        assert!(dechunker.feed(b"zz\r\n", |_| {}).is_err());
    }
}
