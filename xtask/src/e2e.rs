//! `cargo xtask e2e`: provision the real clients and proxies (Debian's Chromium and nginx,
//! Node's `eventsource` and `openai` packages), build the demo, examples/llm-tokens and the
//! harness in release, and run the harness (`e2e/`), which prints its results and writes the
//! load figures to BENCHMARKS.md.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use crate::{Result, cargo, root, run};

/// The Chromium that Debian's `chromium` package installs.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `nginx` package installs the server.
const NGINX: &str = "/usr/sbin/nginx";
/// The `eventsource` release the Node client is written against (ESM, `new EventSource(url,
/// { fetch })`, Node >= 20).
const EVENTSOURCE: &str = "eventsource@4.1.0";
/// OpenAI's official client, whose stream parser reads the generations scenario's
/// Responses-shaped stream (6.x: the last line without a Node >= 22 requirement).
const OPENAI: &str = "openai@6.30.1";

/// Installs what is missing, builds, and runs the harness. With `install_only`, stops after
/// provisioning.
pub(crate) fn e2e(install_only: bool) -> Result {
    let started = Instant::now();
    // The `topics` scenario runs two demo servers on one Redis.
    crate::ensure_tool("redis-server", "redis-server")?;
    let node_dir = install()?;
    if install_only {
        return Ok(());
    }
    release_build("e2e build (release)")?;
    let release = target_dir().join("release");
    let root = root();
    run(
        "e2e",
        Command::new(release.join("tower-sse-e2e"))
            .current_dir(&root)
            .arg("--demo")
            .arg(release.join("example-demo"))
            .arg("--chromium")
            .arg(CHROMIUM)
            .arg("--nginx")
            .arg(NGINX)
            .arg("--node-client")
            .arg(root.join("e2e/node/client.mjs"))
            .arg("--node-modules")
            .arg(node_dir.join("node_modules"))
            .arg("--benchmarks")
            .arg(root.join("BENCHMARKS.md"))
            .arg("--work-dir")
            .arg(target_dir().join("e2e")),
    )?;
    println!(
        "\ne2e: provisioned, built and passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Installs Chromium and nginx from Debian (one `apt-get update`, then one install of the
/// missing packages) and `eventsource` under `target/e2e/node`; returns that directory.
fn install() -> Result<PathBuf> {
    let missing: Vec<&str> = [("chromium", CHROMIUM), ("nginx", NGINX)]
        .into_iter()
        .filter(|(_, path)| !Path::new(path).exists())
        .map(|(package, _)| package)
        .collect();
    if missing.is_empty() {
        println!("\n==> e2e tools: chromium and nginx already installed");
    } else {
        run("apt-get update", Command::new("apt-get").arg("update"))?;
        run(
            &format!("apt-get install {}", missing.join(" ")),
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    for path in [CHROMIUM, NGINX] {
        if !Path::new(path).exists() {
            return Err(format!("{path} is still missing after apt-get install"));
        }
    }

    let node_dir = target_dir().join("e2e/node");
    std::fs::create_dir_all(&node_dir).map_err(|e| format!("{}: {e}", node_dir.display()))?;
    // A package.json of our own keeps npm from walking up to another project's.
    let manifest = node_dir.join("package.json");
    if !manifest.exists() {
        std::fs::write(
            &manifest,
            "{ \"name\": \"tower-sse-e2e-node\", \"private\": true }\n",
        )
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    }
    for package in [EVENTSOURCE, OPENAI] {
        let (name, wanted) = package.split_once('@').expect("name@version");
        let installed = node_dir.join(format!("node_modules/{name}/package.json"));
        let current = std::fs::read_to_string(&installed).unwrap_or_default();
        if current.contains(&format!("\"version\": \"{wanted}\"")) {
            println!("==> e2e tools: {package} already installed");
            continue;
        }
        run(
            &format!("npm install {package}"),
            Command::new("npm").current_dir(&node_dir).args([
                "install",
                "--no-audit",
                "--no-fund",
                "--save-exact",
                package,
            ]),
        )?;
    }
    Ok(node_dir)
}

/// Builds everything the e2e run and the load benchmarks start, in release, as one cargo
/// command: the demo, the LLM example and every binary of the e2e package (the harness,
/// `storm`, `fanout`, `idle`). One package set means one feature set for the shared crates,
/// so a second call builds nothing.
pub(crate) fn release_build(step: &str) -> Result {
    run(
        step,
        cargo().args([
            "build",
            "--release",
            "--package",
            "example-demo",
            "--package",
            "example-llm-tokens",
            "--package",
            "tower-sse-e2e",
        ]),
    )
}
