//! The socket benchmarks of issue 16, `e2e/src/bin/{fanout,idle}`, built and run in release.
//!
//! ```text
//! cargo xtask bench fanout [ARGS]   10,000 subscribers, limit / hand-rolled axum / tower-sse
//! cargo xtask bench idle [ARGS]     100,000 idle streams, bare hyper / hyper / axum + layer
//! ```
//!
//! `ARGS` go to the binary (`--smoke` for the short run `cargo xtask ci` makes, which fails
//! on a lost, duplicated or out-of-order event, or a dropped stream or missing heartbeat).

use std::process::Command;

use crate::{Result, run};

/// The benchmark binaries this module runs.
pub(crate) const BENCHES: &[&str] = &["fanout", "idle"];

/// Builds `bench` (one of [`BENCHES`]) in release and runs it with `args`.
pub(crate) fn bench(bench: &str, args: &[String]) -> Result {
    let binary = crate::build_load_tools()?.join(bench);
    let step = if args.is_empty() {
        bench.to_owned()
    } else {
        format!("{bench} {}", args.join(" "))
    };
    run(&step, Command::new(binary).args(args))
}
