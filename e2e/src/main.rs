//! The end-to-end harness behind `cargo xtask e2e`: the demo server (`example-demo`) against
//! the clients and proxies users run.
//!
//! 1. **browser**: headless Chromium behind a proxy that cuts the stream mid-event, for each
//!    framework (`resume.rs`);
//! 2. **dashboard**: the page's live metrics dashboard in headless Chromium equals `/metrics`,
//!    with a screenshot in the work dir (`dashboard.rs`);
//! 3. **nginx**: gzip and proxy buffering in front of the demo (`nginx.rs`);
//! 4. **node**: Node's `eventsource` package behind the same cutting proxy (`resume.rs`);
//! 5. **load**: 10,000 streams, 10 events/s for 30 s, memory and latency (`load.rs`), whose
//!    figures go to BENCHMARKS.md;
//! 6. **h2**: the demo over TLS and HTTP/2 for each framework: no connection-specific header,
//!    and headless Chromium's 12 `EventSource`s to one origin all open and get their events
//!    (with the HTTP/1.1 contrast, 6 per host) (`h2.rs`);
//! 7. **topics**: Chromium on a three-topic stream through the cutting proxy, and two demo
//!    servers on one `redis-server` serving one three-topic client (`topics.rs`);
//! 8. **generations**: resumable answers (examples/llm-tokens) read by Chromium, Node's
//!    `eventsource` and OpenAI's `openai` package (`generations.rs`).
//!
//! Run with `cargo xtask e2e`, which installs the tools, builds this and the demo in release
//! and passes the paths:
//!
//! ```text
//! tower-sse-e2e --demo PATH --chromium PATH --nginx PATH --node-client PATH
//!               --node-modules DIR --benchmarks PATH --work-dir DIR
//! ```
//!
//! Sizes come from the environment:
//!
//! ```text
//! E2E_ONLY                      scenarios to run, comma separated   browser,dashboard,h2,nginx,node,generations,load,topics
//! E2E_FRAMEWORKS                demo frameworks (all but load)      axum,warp,poem
//! E2E_EVENTS                    events in the browser, h2, Node, topics runs 12
//! E2E_RETRY_MS                  the demo's --retry-ms there         500
//! E2E_IDLE_SECS                 the idle stream through nginx       30
//! E2E_LOAD_CONNECTIONS          concurrent streams under load       10000
//! E2E_LOAD_RATE                 events per second under load        10
//! E2E_LOAD_SECS                 seconds of publishing under load    30
//! E2E_LOAD_REUSE_TOLERANCE_PCT  RSS left after the drop, allowed     10 (% of the growth)
//! ```
//!
//! Everything started here (demo servers, nginx, Chromium, node) is a child process killed
//! when its guard drops, listens on 127.0.0.1 only, and every wait is bounded.

mod benchmarks;
mod cdp;
mod client;
mod cut_proxy;
mod dashboard;
mod generations;
mod h2;
mod h2_client;
mod load;
mod nginx;
mod process;
mod resume;
mod topics;
mod wire;

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

/// Paths to the programs and files the harness uses.
#[derive(Debug)]
pub(crate) struct Tools {
    demo: PathBuf,
    chromium: PathBuf,
    nginx: PathBuf,
    node_client: PathBuf,
    node_modules: PathBuf,
    benchmarks: PathBuf,
    work_dir: PathBuf,
}

impl Tools {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut get = |want: &str| -> Result<PathBuf, String> {
            match (args.next(), args.next()) {
                // Absolute, since nginx and node resolve relative paths their own way.
                (Some(flag), Some(value)) if flag == want => {
                    std::path::absolute(&value).map_err(|e| format!("{want} {value}: {e}"))
                }
                (flag, _) => Err(format!("expected `{want} VALUE`, got {flag:?}")),
            }
        };
        Ok(Self {
            demo: get("--demo")?,
            chromium: get("--chromium")?,
            nginx: get("--nginx")?,
            node_client: get("--node-client")?,
            node_modules: get("--node-modules")?,
            benchmarks: get("--benchmarks")?,
            work_dir: get("--work-dir")?,
        })
    }

    /// The log file of a child process, under `WORK_DIR/logs`.
    pub(crate) fn log_path(&self, name: &str) -> PathBuf {
        self.work_dir.join("logs").join(format!("{name}.log"))
    }
}

/// Sizes and delays, from the environment.
#[derive(Debug)]
pub(crate) struct Settings {
    only: Vec<String>,
    frameworks: Vec<String>,
    /// Events published in the browser and Node runs.
    pub(crate) events: usize,
    /// The proxy cuts the n-th `/events` connection after `cuts[n]` complete events.
    pub(crate) cuts: Vec<usize>,
    /// The pause between those events.
    pub(crate) publish_interval: Duration,
    /// The demo's `--retry-ms` in those runs.
    pub(crate) retry: Duration,
    /// How long the idle stream through nginx must survive.
    pub(crate) idle: Duration,
    pub(crate) load_connections: usize,
    pub(crate) load_rate: u32,
    pub(crate) load_secs: u32,
    pub(crate) load_reuse_tolerance_pct: u32,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
            match std::env::var(name) {
                Ok(value) => value
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={value:?} is not a valid number")),
                Err(_) => Ok(default),
            }
        }
        let list = |name: &str, default: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let settings = Self {
            only: list(
                "E2E_ONLY",
                "browser,dashboard,h2,nginx,node,generations,load,topics",
            ),
            frameworks: list("E2E_FRAMEWORKS", "axum,warp,poem"),
            events: var("E2E_EVENTS", 12)?,
            cuts: vec![3, 3],
            publish_interval: Duration::from_millis(150),
            retry: Duration::from_millis(var("E2E_RETRY_MS", 500)?),
            idle: Duration::from_secs(var("E2E_IDLE_SECS", 30)?),
            load_connections: var("E2E_LOAD_CONNECTIONS", 10_000)?,
            load_rate: var("E2E_LOAD_RATE", 10)?,
            load_secs: var("E2E_LOAD_SECS", 30)?,
            load_reuse_tolerance_pct: var("E2E_LOAD_REUSE_TOLERANCE_PCT", 10)?,
        };
        if settings.events <= settings.cuts.iter().sum() {
            return Err(format!(
                "E2E_EVENTS must exceed {} (the events before the proxy's cuts)",
                settings.cuts.iter().sum::<usize>()
            ));
        }
        if settings.load_rate == 0 {
            return Err("E2E_LOAD_RATE must be positive".to_owned());
        }
        Ok(settings)
    }

    /// Events published in the load run.
    pub(crate) fn load_events(&self) -> usize {
        self.load_rate as usize * self.load_secs as usize
    }

    fn runs(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}

/// The result of one check.
#[derive(Debug)]
pub(crate) struct Outcome {
    name: String,
    result: Result<String, String>,
    elapsed: Duration,
}

impl Outcome {
    /// Records the result of one check and prints it at once.
    pub(crate) fn report(name: &str, result: Result<String, String>, elapsed: Duration) -> Self {
        let outcome = Self {
            name: name.to_owned(),
            result,
            elapsed,
        };
        outcome.print();
        outcome
    }

    fn print(&self) {
        let (word, text) = match &self.result {
            Ok(figures) => ("PASS", figures),
            Err(failure) => ("FAIL", failure),
        };
        println!(
            "  {word}  {} ({:.1} s)\n        {text}",
            self.name,
            self.elapsed.as_secs_f64()
        );
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let tools = match Tools::parse(std::env::args().skip(1)) {
        Ok(tools) => tools,
        Err(e) => {
            eprintln!("tower-sse-e2e: {e}\n(run it with `cargo xtask e2e`)");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("tower-sse-e2e: {e}");
            return ExitCode::from(2);
        }
    };
    // Dropping `run` (on a signal or at the time limit) drops every guard, which kills
    // every child; Chromium's helpers are in their own process group, out of reach of a
    // terminal's Ctrl-C.
    let result = tokio::select! {
        result = tokio::time::timeout(TIME_LIMIT, run(&tools, &settings)) => result
            .unwrap_or_else(|_| Err(format!("stopped at the {} s time limit", TIME_LIMIT.as_secs()))),
        signal = interrupted() => Err(format!("stopped by {signal}")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tower-sse-e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The bound on the whole run (it takes about 90 s).
const TIME_LIMIT: Duration = Duration::from_secs(900);

/// Resolves on SIGINT or SIGTERM, with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

async fn run(tools: &Tools, settings: &Settings) -> Result<bool, String> {
    let started = Instant::now();
    resume::ensure_dir(&tools.work_dir.join("logs"))?;
    resume::ensure_dir(&tools.work_dir.join("tmp"))?;
    for (what, path) in [
        ("demo", &tools.demo),
        ("chromium", &tools.chromium),
        ("nginx", &tools.nginx),
        ("node client", &tools.node_client),
        ("node modules", &tools.node_modules),
    ] {
        if !path.exists() {
            return Err(format!("{what} not found at {}", path.display()));
        }
    }
    // Raised before any child starts, so the demo inherits it (10,000 streams are 10,000
    // descriptors on each side of loopback).
    let nofile = rlimit::increase_nofile_limit(u64::MAX)
        .map_err(|e| format!("raising RLIMIT_NOFILE: {e}"))?;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let loadavg = loadavg.split(' ').take(3).collect::<Vec<_>>().join(" ");
    println!(
        "e2e: open-file limit {nofile}; load average {loadavg}; logs in {}",
        tools.work_dir.join("logs").display()
    );

    let mut outcomes = Vec::new();
    if settings.runs("browser") {
        println!("\n-- browser: headless Chromium, stream cut mid-event");
        for framework in &settings.frameworks {
            let t = Instant::now();
            let result = resume::browser(tools, settings, framework).await;
            outcomes.push(Outcome::report(
                &format!("browser ({framework})"),
                result,
                t.elapsed(),
            ));
        }
    }
    if settings.runs("h2") {
        println!("\n-- h2: TLS + HTTP/2, 12 EventSources in Chromium, connection-specific headers");
        outcomes.extend(h2::h2(tools, settings).await);
    }
    if settings.runs("node") {
        println!("\n-- node: the eventsource package, stream cut mid-event");
        for framework in &settings.frameworks {
            let t = Instant::now();
            let result = resume::node(tools, settings, framework).await;
            outcomes.push(Outcome::report(
                &format!("node eventsource ({framework})"),
                result,
                t.elapsed(),
            ));
        }
    }
    if settings.runs("dashboard") {
        println!("\n-- dashboard: headless Chromium reads the page's metrics");
        for framework in &settings.frameworks {
            let t = Instant::now();
            let result = dashboard::dashboard(tools, settings, framework).await;
            let name = format!("dashboard ({framework})");
            outcomes.push(Outcome::report(&name, result, t.elapsed()));
        }
    }
    if settings.runs("nginx") {
        println!("\n-- nginx: gzip, proxy buffering, proxy_read_timeout");
        outcomes.extend(nginx::nginx(tools, settings).await);
    }
    if settings.runs("topics") {
        println!("\n-- topics: three topics on one stream, one cursor, two servers on Redis");
        outcomes.extend(topics::topics(tools, settings).await);
    }
    if settings.runs("generations") {
        println!("\n-- generations: examples/llm-tokens with Chromium, eventsource and openai");
        outcomes.extend(generations::generations(tools).await);
    }
    if settings.runs("load") {
        println!(
            "\n-- load: {} streams, {} events/s for {} s",
            settings.load_connections, settings.load_rate, settings.load_secs
        );
        let needed = settings.load_connections as u64 + 1024;
        let t = Instant::now();
        let (result, figures) = if nofile < needed {
            (
                Err(format!(
                    "the open-file limit is {nofile}, the load needs {needed}"
                )),
                None,
            )
        } else {
            load::load(tools, settings).await
        };
        if let Some(figures) = &figures {
            let note = format!("Load average {loadavg} when the e2e run began.");
            benchmarks::write(&tools.benchmarks, figures, result.is_ok(), &note)?;
        }
        outcomes.push(Outcome::report("load", result, t.elapsed()));
    }

    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    println!("\ne2e summary ({:.0} s):", started.elapsed().as_secs_f64());
    for outcome in &outcomes {
        println!(
            "  {}  {:<55} {:>6.1} s",
            if outcome.result.is_ok() {
                "PASS"
            } else {
                "FAIL"
            },
            outcome.name,
            outcome.elapsed.as_secs_f64()
        );
    }
    if settings.runs("load") {
        println!("load figures written to {}", tools.benchmarks.display());
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    Ok(failed == 0)
}
