//! Release checks: every crate under `crates/` that is not `publish = false` packages and
//! passes `cargo publish --dry-run`, and its declared `rust-version` is true.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::{Result, cargo, root, run};

/// A workspace crate that will be published.
#[derive(Debug)]
pub(crate) struct Publishable {
    name: String,
    version: String,
    rust_version: Option<String>,
}

fn metadata() -> Result<Value> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--all-features"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

/// Workspace members under `crates/` whose `publish` is not `false` (`[]` in metadata).
fn publishable(metadata: &Value) -> Vec<Publishable> {
    let crates_dir = root().join("crates");
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut found: Vec<Publishable> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter(|p| {
            p["manifest_path"]
                .as_str()
                .is_some_and(|m| std::path::Path::new(m).starts_with(&crates_dir))
        })
        .filter(|p| !p["publish"].as_array().is_some_and(Vec::is_empty))
        .map(|p| Publishable {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            version: p["version"].as_str().unwrap_or_default().to_owned(),
            rust_version: p["rust_version"].as_str().map(str::to_owned),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// `1.88` or `1.88.0` as comparable numbers.
fn version(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// Every published crate declares a `rust-version` at least the highest `rust-version` of the
/// packages in its normal and build dependency closure (all features, every target), as
/// resolved by Cargo.lock.
pub(crate) fn check_rust_version() -> Result {
    println!("\n==> rust-version of every published crate against its dependencies");
    let metadata = metadata()?;
    // name + version -> rust_version, for every package in the lock file.
    let declared: BTreeMap<(String, String), String> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                (
                    p["name"].as_str()?.to_owned(),
                    p["version"].as_str()?.to_owned(),
                ),
                p["rust_version"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut failures = Vec::new();
    for krate in publishable(&metadata) {
        // `cargo tree -p` resolves features for this crate alone, as a user's build would.
        let output = cargo()
            .args([
                "tree",
                "-p",
                &krate.name,
                "--all-features",
                "--target",
                "all",
            ])
            .args([
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
                "cargo tree -p {} failed: {}",
                krate.name,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let tree = String::from_utf8_lossy(&output.stdout);
        let mut needs: Vec<(String, String)> =
            BTreeSet::<(String, String)>::from_iter(tree.lines().filter_map(|line| {
                let mut words = line.split_whitespace();
                let name = words.next()?.to_owned();
                let version = words.next()?.trim_start_matches('v').to_owned();
                Some((name, version))
            }))
            .into_iter()
            .filter(|(name, _)| *name != krate.name)
            .filter_map(|(name, v)| {
                let rust = declared.get(&(name.clone(), v.clone()))?;
                Some((format!("{name} {v}"), rust.clone()))
            })
            .collect();
        needs.sort_by_key(|need| std::cmp::Reverse(version(&need.1)));
        let Some(declared) = &krate.rust_version else {
            failures.push(format!("{} declares no rust-version", krate.name));
            continue;
        };
        let above: Vec<String> = needs
            .iter()
            .filter(|(_, rust)| version(rust) > version(declared))
            .map(|(package, rust)| format!("{package} needs {rust}"))
            .collect();
        match above.is_empty() {
            true => println!(
                "    {} rust-version {declared}: ok (highest dependency: {})",
                krate.name,
                needs
                    .first()
                    .map_or("none".to_owned(), |(p, r)| format!("{p} needs {r}"))
            ),
            false => failures.push(format!(
                "{} declares rust-version {declared}, but {}; raise its rust-version to {}",
                krate.name,
                above.join(", "),
                needs[0].1
            )),
        }
    }
    if failures.is_empty() {
        println!("<== every declared rust-version holds");
        Ok(())
    } else {
        Err(format!(
            "rust-version is false:\n  {}",
            failures.join("\n  ")
        ))
    }
}

/// `cargo package` then `cargo publish --dry-run` for every published crate, together, so
/// that Cargo resolves the unpublished local dependencies between them (cargo >= 1.90).
pub(crate) fn check_packages() -> Result {
    let metadata = metadata()?;
    let crates = publishable(&metadata);
    if crates.is_empty() {
        return Err("no publishable crate under crates/".to_owned());
    }
    // `cargo publish --dry-run` verifies each crate against the others' packaged copies in
    // `target/package/tmp-registry`; a copy left by an earlier run has the same version and
    // is used as it is, so a crate would be checked against stale sources of its siblings.
    // Cargo also keeps the sources it extracted from that registry under
    // `$CARGO_HOME/registry/src/<registry>/<crate>-<version>` (and the archives under
    // `cache/`), and reuses them while they exist: remove our crates' copies. None of these
    // names is on crates.io, so nothing else is touched.
    // The compiled copies of those crates are cached under the target dir the same way (a
    // registry crate's fingerprint is its name, version and source, never its files), so the
    // dry run builds in a target dir of its own, made anew each time.
    let verify_dir = crate::e2e::target_dir().join("publish-check");
    let mut stale = vec![crate::e2e::target_dir().join("package"), verify_dir.clone()];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo"))
        });
    if let Some(cargo_home) = cargo_home {
        for kind in ["src", "cache"] {
            let Ok(registries) = std::fs::read_dir(cargo_home.join("registry").join(kind)) else {
                continue;
            };
            for registry in registries.flatten() {
                for krate in &crates {
                    let name = format!("{}-{}", krate.name, krate.version);
                    stale.push(registry.path().join(&name));
                    stale.push(registry.path().join(format!("{name}.crate")));
                }
            }
        }
    }
    for path in stale.iter().filter(|path| path.exists()) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    let mut package_args = Vec::new();
    for krate in &crates {
        package_args.push("-p".to_owned());
        package_args.push(krate.name.clone());
    }
    run(
        &format!("cargo package ({} crates)", crates.len()),
        cargo()
            .arg("package")
            .args(&package_args)
            .arg("--no-verify"),
    )?;
    run(
        &format!("cargo publish --dry-run ({} crates)", crates.len()),
        cargo()
            .args(["publish", "--dry-run", "--target-dir"])
            .arg(&verify_dir)
            .args(&package_args),
    )
}
