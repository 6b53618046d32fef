//! The load figures as the "End to end" section of BENCHMARKS.md (only that section is
//! rewritten; it is appended when absent).

use std::path::Path;

use crate::load::LoadFigures;

/// The heading of the section this harness owns.
pub(crate) const HEADING: &str = "## End to end (cargo xtask e2e)";

/// Replaces (or appends) the section in the file at `path`.
pub(crate) fn write(
    path: &Path,
    figures: &LoadFigures,
    passed: bool,
    note: &str,
) -> Result<(), String> {
    let old = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let new = replace_section(&old, &section(figures, passed, note));
    std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}

fn replace_section(document: &str, section: &str) -> String {
    let Some(start) = document
        .match_indices(HEADING)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || document[..i].ends_with('\n'))
    else {
        let mut out = document.trim_end().to_owned();
        out.push_str("\n\n");
        out.push_str(section);
        return out;
    };
    let after = start + HEADING.len();
    let end = document[after..]
        .find("\n## ")
        .map_or(document.len(), |i| after + i + 1);
    let mut out = String::with_capacity(document.len() + section.len());
    out.push_str(&document[..start]);
    out.push_str(section);
    if end < document.len() {
        out.push('\n');
        out.push_str(&document[end..]);
    }
    out
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn section(f: &LoadFigures, passed: bool, note: &str) -> String {
    let expected = f.connections as u64 * f.events as u64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    format!(
        "{HEADING}\n\n\
         `cargo xtask e2e` (load part: `e2e/src/load.rs`; sizes from `E2E_LOAD_CONNECTIONS`,\n\
         `E2E_LOAD_RATE`, `E2E_LOAD_SECS`). One demo server (`example-demo`, axum, release build,\n\
         `--heartbeat-ms 1000 --tick-ms 0`, jemalloc) on loopback; the clients are tasks in\n\
         the harness process (one tokio runtime, raw HTTP/1.1, the project's `Decoder`), each\n\
         checking that event n carries sequence number n; the publisher sends `POST /publish`\n\
         over one keep-alive connection. Latency runs from just before the publish request to the\n\
         client decoding the event (one process, one monotonic clock). Memory is the server's\n\
         VmRSS (`/proc/PID/status`) after a warm-up connection and publish, then with every\n\
         client connected; per connection is the difference over the connection count. Then\n\
         every client drops its connection at once: within 30 s the server's open files\n\
         (`/proc/PID/fd`) must return to the baseline and its RSS to the baseline plus {}% of\n\
         what the connections took. (The demo runs on jemalloc with background purging; with\n\
         glibc's malloc the freed memory stays in per-thread arenas and RSS stays high.)\n\
         Server, clients and publisher share the machine's 2 cores.\n{note}\n\n\
         | figure | value |\n\
         | --- | ---: |\n\
         | concurrent connections | {} |\n\
         | events published | {} ({}/s over {:.1} s) |\n\
         | deliveries, each in order | {} of {} ({} of {} clients complete) |\n\
         | time to open every connection | {:.1} s |\n\
         | delivery latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |\n\
         | CPU while publishing: server / clients and publisher | {:.0}% / {:.0}% of one core |\n\
         | server RSS before / with all connected | {:.1} / {:.1} MiB |\n\
         | server memory per connection | {:.1} KiB |\n\
         | server RSS at the end of the run / after the drop | {:.1} / {:.1} MiB |\n\
         | server open files before / connected / after the drop | {} / {} / {} (back in {:.1} s) |\n\
         | result | {} |\n",
        f.reuse_tolerance_pct,
        thousands(f.connections as u64),
        thousands(f.events as u64),
        f.rate,
        f.publish_secs,
        thousands(f.deliveries),
        thousands(expected),
        thousands(f.complete_clients as u64),
        thousands(f.connections as u64),
        f.connect_secs,
        f.p50_ms,
        f.p99_ms,
        f.max_ms,
        f.server_cpu_pct,
        f.harness_cpu_pct,
        mib(f.rss_baseline_kib),
        mib(f.rss_connected_kib),
        f.kib_per_connection(),
        mib(f.rss_end_kib),
        mib(f.rss_after_kib),
        f.fds_baseline,
        f.fds_connected,
        f.fds_after,
        f.settle_secs,
        if passed {
            "pass".to_owned()
        } else {
            format!("FAIL: {}", f.failures.join("; "))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_its_section() {
        let doc = format!("# B\n\n## One\n\nx\n\n{HEADING}\n\nold\n\n## Two\n\ny\n");
        let new = replace_section(&doc, &format!("{HEADING}\n\nnew\n"));
        assert_eq!(
            new,
            format!("# B\n\n## One\n\nx\n\n{HEADING}\n\nnew\n\n## Two\n\ny\n")
        );
    }

    #[test]
    fn appends_when_absent_and_replaces_at_the_end() {
        let new = replace_section("# B\n\n## One\n\nx\n", &format!("{HEADING}\n\nnew\n"));
        assert_eq!(new, format!("# B\n\n## One\n\nx\n\n{HEADING}\n\nnew\n"));
        let again = replace_section(&new, &format!("{HEADING}\n\nnewer\n"));
        assert_eq!(again, format!("# B\n\n## One\n\nx\n\n{HEADING}\n\nnewer\n"));
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(3_000_000), "3,000,000");
        assert_eq!(thousands(300), "300");
    }
}
