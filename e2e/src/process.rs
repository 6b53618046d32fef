//! Child processes that die with their guard, temporary directories that go with theirs, and
//! the demo server.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A child process killed (SIGKILL) when dropped, with its whole process group when it leads
/// one (Chromium starts a tree of helpers).
#[derive(Debug)]
pub(crate) struct ChildGuard {
    name: String,
    child: Child,
    group: Option<Pid>,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed, stdout and stderr appended to `log`; with `group`,
    /// in a new process group that the guard kills as a whole.
    pub(crate) fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
        group: bool,
    ) -> Result<Self, String> {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let file2 = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2)
            .kill_on_drop(true);
        if group {
            command.process_group(0);
        }
        Self::start(name, command, group)
    }

    /// Spawns an already configured `command` (the caller chose its stdio).
    pub(crate) fn start(name: &str, mut command: Command, group: bool) -> Result<Self, String> {
        command.kill_on_drop(true);
        if group {
            command.process_group(0);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("{name}: could not start: {e}"))?;
        let group = if group {
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw)
        } else {
            None
        };
        Ok(Self {
            name: name.to_owned(),
            child,
            group,
        })
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The child, to take its pipes or wait for it.
    pub(crate) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether the process has exited, with its status.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The name given at spawn, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            // The group may already be gone; nothing to do then.
            let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
    }
}

/// A fresh directory removed (with its contents) when dropped.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `parent/<prefix>-<pid>-<n>`, emptied first if a previous run left it.
    pub(crate) fn new(parent: &Path, prefix: &str) -> Result<Self, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { path })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running demo server (`example-demo`), killed on drop.
#[derive(Debug)]
pub(crate) struct Demo {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Whether it serves HTTPS (`--tls-cert`): its first line said `https://`.
    pub(crate) https: bool,
    /// Its process id, for /proc.
    pub(crate) pid: u32,
    guard: ChildGuard,
}

impl Demo {
    /// Starts `bin --addr 127.0.0.1:0 ARGS` and waits (at most 20 s) for its first stdout line,
    /// `listening on http://ADDR` (`https://` with `--tls-cert`). Its stderr goes to `log`, whose text is in the error when
    /// the demo exits first (an unknown flag, say).
    pub(crate) async fn start(bin: &Path, args: &[&str], log: &Path) -> Result<Self, String> {
        let name = format!("example-demo {}", args.join(" "));
        let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(bin);
        command
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut guard = ChildGuard::start(&name, command, false)?;
        let stdout = guard
            .child_mut()
            .stdout
            .take()
            .ok_or("demo stdout not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        let first = match first {
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                // Exited (or closed stdout) before saying where it listens.
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), guard.child_mut().wait()).await;
                let said = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!(
                    "`{name}` exited before listening: {}",
                    said.lines().next().unwrap_or("(no message)").trim()
                ));
            }
            Err(_) => return Err(format!("`{name}` printed nothing for 20 s")),
        };
        let (https, addr) = match first.strip_prefix("listening on https://") {
            Some(addr) => (true, addr),
            None => (
                false,
                first.strip_prefix("listening on http://").unwrap_or(""),
            ),
        };
        let addr = addr.trim().parse().map_err(|_| {
            format!("`{name}`: first line is {first:?}, not `listening on http(s)://ADDR`")
        })?;
        // Keep draining stdout so the demo never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = guard.pid().ok_or("demo exited at once")?;
        Ok(Self {
            addr,
            https,
            pid,
            guard,
        })
    }

    /// Fails when the demo has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.guard.exited() {
            Some(status) => Err(format!("`{}` exited: {status}", self.guard.name())),
            None => Ok(()),
        }
    }
}

/// A free loopback port (bound, read, released: another process could take it in between,
/// which only makes a start fail loudly).
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Waits (bounded) until something accepts connections on `addr`.
pub(crate) async fn wait_listening(addr: SocketAddr, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("nothing listens on {addr} after {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resident memory (VmRSS) of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS"))
}

/// Open file descriptors of a process.
pub(crate) fn open_files(pid: u32) -> Result<usize, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat` (in USER_HZ ticks,
/// 100 per second on Linux).
pub(crate) fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok(Duration::from_millis((user + system) * 10)),
        _ => Err(format!("/proc/{pid}/stat: no utime/stime")),
    }
}
