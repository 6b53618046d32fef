//! Project automation, run the same way by people and by CI.
//!
//! ```text
//! cargo xtask ci              fmt, clippy, tests, docs, dependency rules, a short fuzz run
//! cargo xtask fuzz [SECONDS]  coverage-guided fuzzing of the decoder (libFuzzer), default 60 s
//! cargo xtask msrv            each published crate's rust-version against its dependencies'
//! cargo xtask package         cargo package + cargo publish --dry-run of every published crate
//! cargo xtask bench           every benchmark; figures go to BENCHMARKS.md by hand
//! cargo xtask bench fanout|idle [ARGS]  fan-out and idle streams over real sockets (release)
//! cargo xtask e2e [--install] Chromium, nginx and Node clients against the demo, and a
//!                             load run; figures go to BENCHMARKS.md (`--install`: only install)
//! ```

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

mod e2e;
mod release;
mod sockets;

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => args
            .get(1)
            .map_or(Ok(60), |s| {
                s.parse()
                    .map_err(|_| format!("fuzz: `{s}` is not a number of seconds"))
            })
            .and_then(fuzz),
        Some("bench") if args.get(1).is_some_and(|a| a == "storm") => storm(false),
        Some("bench")
            if args
                .get(1)
                .is_some_and(|a| sockets::BENCHES.contains(&a.as_str())) =>
        {
            sockets::bench(&args[1], &args[2..])
        }
        Some("bench") => bench(),
        Some("deps") => check_core_dependencies(),
        Some("msrv") => release::check_rust_version(),
        Some("package") => release::check_packages(),
        Some("e2e") => e2e::e2e(args.get(1).is_some_and(|a| a == "--install")),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | fuzz [SECONDS] | bench [storm | fanout | idle] | deps | msrv | package | e2e [--install]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(step: &str, cmd: &mut Command) -> Result {
    println!("\n==> {step}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: could not start: {e}"))?;
    println!(
        "<== {step}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result {
    let started = Instant::now();
    // The Redis store's tests and benchmark start real servers.
    ensure_tool("redis-server", "redis-server")?;
    run("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    check_core_dependencies()?;
    release::check_rust_version()?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "tests",
        cargo().args(["test", "--workspace", "--all-features"]),
    )?;
    run(
        "docs",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    release::check_packages()?;
    fuzz(10)?;
    e2e::e2e(false)?;
    storm(true)?;
    for bench in sockets::BENCHES {
        sockets::bench(bench, &["--smoke".to_owned()])?;
    }
    println!(
        "\nci: all steps passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Installs the Debian package `package` when `program` is not on the `PATH` (CI machines
/// start fresh; we run as root there).
fn ensure_tool(program: &str, package: &str) -> Result {
    let found = Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        println!("\n==> {program}: already installed");
        return Ok(());
    }
    let apt = Command::new("apt-get")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status();
    if apt.is_err() {
        return Err(format!(
            "`{program}` is missing and there is no apt-get to install it: install the \
             `{package}` package (or its equivalent) and run again"
        ));
    }
    run("apt-get update", Command::new("apt-get").arg("update"))?;
    run(
        &format!("apt-get install {package}"),
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("`{program}` is still missing after apt-get install {package}: {e}"))
        .map(drop)
}

/// The core crate is sans-IO: no runtime, no HTTP stack, no framework may reach it, with any
/// combination of features.
fn check_core_dependencies() -> Result {
    const FORBIDDEN: &[&str] = &[
        "tokio",
        "http",
        "http-body",
        "hyper",
        "axum",
        "warp",
        "poem",
        "async-std",
        "futures-io",
    ];
    println!("\n==> dependency rules: tower-sse-core");
    let output = cargo()
        .args([
            "tree",
            "--package",
            "tower-sse-core",
            "--all-features",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .map_err(|e| format!("cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&output.stdout);
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| FORBIDDEN.contains(name))
        .collect();
    if found.is_empty() {
        println!("<== tower-sse-core depends on none of {FORBIDDEN:?}");
        Ok(())
    } else {
        Err(format!(
            "tower-sse-core must stay sans-IO but depends on {found:?}"
        ))
    }
}

/// Builds the libFuzzer target with coverage instrumentation on the stable toolchain (the
/// flags `cargo fuzz build -s none` uses) and runs it for `seconds`.
fn fuzz(seconds: u64) -> Result {
    let dir = root().join("crates/tower-sse-core/fuzz");
    let target_dir = root().join("target/fuzz");
    let rustflags = [
        "--cfg fuzzing",
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "-Cdebug-assertions",
        "-Coverflow-checks",
    ]
    .join(" ");
    // With an explicit --target, RUSTFLAGS skip build scripts and proc macros, which must
    // not be instrumented (they would not link without libFuzzer).
    let host = host_triple()?;
    run(
        "fuzz build",
        cargo()
            .current_dir(&dir)
            .args(["build", "--release", "--bin", "decode", "--target", &host])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", rustflags),
    )?;
    let corpus = target_dir.join("corpus/decode");
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let seeds = dir.join("seeds/decode");
    run(
        &format!("fuzz decode for {seconds}s"),
        Command::new(target_dir.join(&host).join("release/decode"))
            .arg(&corpus)
            .arg(&seeds)
            .arg(format!("-max_total_time={seconds}"))
            .arg("-max_len=4096")
            .arg(format!("-artifact_prefix={}/", target_dir.display())),
    )
}

fn host_triple() -> Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV printed no host triple".to_owned())
}

/// Builds the load tools in release (the demo, `storm`, and the socket benchmarks) with the
/// very command the e2e run builds with (`e2e::release_build`): the same packages, so the same
/// features of the shared crates. Built with another set (the e2e package alone, or the
/// demo with it), the library crates were compiled in release again, twice in a CI run.
/// Returns the release directory.
pub(crate) fn build_load_tools() -> Result<PathBuf> {
    e2e::release_build("load tools build (release)")?;
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("release"))
}

/// The reconnect storm (`e2e/src/bin/storm.rs`) against the release demo, over `MemoryLog`
/// and `RedisLog`: 10,000 clients, or with `smoke` 300 clients 100 events behind, which fails
/// on any lost, duplicated or wrong event. Prints a markdown table for BENCHMARKS.md.
fn storm(smoke: bool) -> Result {
    ensure_tool("redis-server", "redis-server")?;
    let release = build_load_tools()?;
    let mut command = Command::new(release.join("storm"));
    command
        .arg("--demo")
        .arg(release.join("example-demo"))
        .args(["--log", "all"]);
    if smoke {
        // Memory and redis also with the demo's publish runtime (`--publish-addr`). The full
        // run keeps the default rows: at 1,000 events/s and 10,000 clients the publish
        // runtime's rows lose events (signalled gaps), see BENCHMARKS.md.
        command.args(["--smoke", "--publish-runtime", "both"]);
    }
    run(if smoke { "storm smoke" } else { "storm" }, &mut command)
}

fn bench() -> Result {
    run(
        "benchmarks",
        cargo().args(["bench", "--package", "tower-sse-benches"]),
    )
}
