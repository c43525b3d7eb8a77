//! Tidy checks: promises about the workspace that no compiler checks.
//!
//! - The MSRV (`rust-version` of the workspace) is true of every library dependency: no crate that
//!   a library crate of ours pulls in (normal dependencies, transitively) declares a newer one.
//! - Every member crate takes the workspace lints.
//! - No `todo!`, `unimplemented!`, `#[ignore]` or `#[should_panic]` in the crates.
//! - The README's dependency list names every third-party dependency of the workspace.
//! - No source file of a crate is over 600 lines (split it by role).
//! - The coordinator's state module is synchronous: no `async`, no `.await`, no lock, no clock
//!   read (its tests aside).
//! - `recovery-backoff` without default features (the schedule, the budget, the standalone
//!   `retry`) is as lean as backon: its normal dependency tree lists at most as many crates.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use crate::cmd::{self, Error};

pub(crate) fn run() -> cmd::Result {
    let mut problems = Vec::new();
    let meta = metadata()?;
    msrv(&meta, &mut problems)?;
    lints(&meta, &mut problems);
    markers(&cmd::workspace_root(), &mut problems);
    readme_names_every_dependency(&cmd::workspace_root(), &mut problems);
    files_stay_small(&cmd::workspace_root(), &mut problems);
    state_module_is_synchronous(&cmd::workspace_root(), &mut problems);
    lean_backoff(&mut problems)?;
    if problems.is_empty() {
        eprintln!("xtask: tidy: ok");
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "tidy found problems:\n  {}",
            problems.join("\n  ")
        )))
    }
}

/// The crates `cargo tree -p backon -e normal` lists for backon 1.6 with its default features on
/// Linux, backon itself included (backon, fastrand, pin-project-lite, tokio): measured, as the
/// benches' peer is not in the normal graph.
const BACKON_TREE: usize = 4;

fn lean_backoff(problems: &mut Vec<String>) -> cmd::Result {
    let tree = cmd::cargo_output(&[
        "tree",
        "-p",
        "recovery-backoff",
        "--no-default-features",
        "-e",
        "normal",
        "--prefix",
        "none",
    ])?;
    let crates: BTreeSet<&str> = tree
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim())
        .filter(|l| !l.is_empty())
        .collect();
    if crates.len() > BACKON_TREE {
        problems.push(format!(
            "recovery-backoff without default features pulls {} crates, backon {BACKON_TREE}: {}",
            crates.len(),
            crates.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// `1.85` or `1.85.0` as comparable numbers.
fn version_key(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn metadata() -> cmd::Result<serde_json::Value> {
    let text = cmd::cargo_output(&["metadata", "--format-version", "1", "--locked"])
        .or_else(|_| cmd::cargo_output(&["metadata", "--format-version", "1"]))?;
    serde_json::from_str(&text).map_err(|e| Error::Failed(format!("cargo metadata: {e}")))
}

/// The manifests of the workspace's members.
fn member_manifests(meta: &serde_json::Value) -> Vec<std::path::PathBuf> {
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .collect();
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter_map(|p| p["manifest_path"].as_str().map(std::path::PathBuf::from))
        .collect()
}

fn msrv(meta: &serde_json::Value, problems: &mut Vec<String>) -> cmd::Result {
    let packages: HashMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let members: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .collect();
    let ours = members
        .iter()
        .filter_map(|id| packages.get(id))
        .filter_map(|p| p["rust_version"].as_str())
        .filter_map(version_key)
        .min()
        .ok_or_else(|| Error::Failed("no workspace member declares rust-version".into()))?;
    let nodes: HashMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    // Library crates of ours: members under crates/ (not xtask, tests, benches).
    let mut stack: Vec<&str> = members
        .iter()
        .copied()
        .filter(|id| {
            packages
                .get(id)
                .and_then(|p| p["manifest_path"].as_str())
                .is_some_and(|m| m.contains("/crates/"))
        })
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if let (true, Some(pkg)) = (normal, dep["pkg"].as_str()) {
                stack.push(pkg);
            }
        }
    }
    for id in seen {
        let Some(p) = packages.get(id) else { continue };
        if let Some(v) = p["rust_version"].as_str().and_then(version_key) {
            if v > ours {
                problems.push(format!(
                    "{} {} needs Rust {}.{}, newer than the workspace's rust-version {}.{}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?"),
                    v.0,
                    v.1,
                    ours.0,
                    ours.1
                ));
            }
        }
    }
    Ok(())
}

fn lints(meta: &serde_json::Value, problems: &mut Vec<String>) {
    for manifest in member_manifests(meta) {
        match fs::read_to_string(&manifest) {
            Ok(text) if !text.contains("[lints]\nworkspace = true") => {
                problems.push(format!(
                    "{} lacks `[lints] workspace = true`",
                    manifest.display()
                ));
            }
            _ => {}
        }
    }
}

/// The keys of `[workspace.dependencies]` that are not crates of this workspace.
fn third_party_dependencies(manifest: &str) -> Vec<String> {
    let mut in_section = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.dependencies]";
            continue;
        }
        if !in_section || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            if !value.contains("path =") {
                names.push(name.trim().to_owned());
            }
        }
    }
    names
}

fn readme_names_every_dependency(root: &Path, problems: &mut Vec<String>) {
    let (Ok(manifest), Ok(readme)) = (
        fs::read_to_string(root.join("Cargo.toml")),
        fs::read_to_string(root.join("README.md")),
    ) else {
        problems.push("cannot read Cargo.toml or README.md".into());
        return;
    };
    let list = readme
        .split_once("## Dependencies")
        .map_or("", |(_, rest)| rest);
    for name in third_party_dependencies(&manifest) {
        if !list.contains(&format!("`{name}`")) {
            problems.push(format!(
                "README.md's dependency list does not name `{name}` (say why it is there)"
            ));
        }
    }
}

/// The most lines a source file of a crate may have.
const MAX_LINES: usize = 600;

fn files_stay_small(root: &Path, problems: &mut Vec<String>) {
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    for file in files {
        if !file.components().any(|c| c.as_os_str() == "src") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{} has {lines} lines, more than {MAX_LINES}: split it by role",
                file.display()
            ));
        }
    }
}

/// What the coordinator's state module must not contain.
const NOT_IN_STATE: [&str; 7] = [
    "async fn",
    ".await",
    "Mutex",
    "RwLock",
    "Instant::now()",
    "SystemTime::now()",
    "thread::sleep",
];

fn state_module_is_synchronous(root: &Path, problems: &mut Vec<String>) {
    let dir = root.join("crates/swarm-integration/src/state");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with("tests.rs") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if let Some(word) = NOT_IN_STATE.iter().find(|w| code.contains(*w)) {
                problems.push(format!(
                    "{}:{}: `{word}` in the coordinator's state module, which must stay synchronous (time comes in as an argument)",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
}

fn markers(root: &Path, problems: &mut Vec<String>) {
    let forbidden = ["todo!(", "unimplemented!(", "#[ignore", "#[should_panic"];
    let mut files = Vec::new();
    for dir in ["crates", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if let Some(marker) = forbidden.iter().find(|m| code.contains(*m)) {
                problems.push(format!(
                    "{}:{}: `{marker}` is not allowed here",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{third_party_dependencies, version_key};

    #[test]
    fn third_party_dependencies_skip_workspace_crates() {
        let manifest = "[workspace.dependencies]\nours = { path = \"crates/ours\", version = \"0.1\" }\ntokio = \"1\"\n# note\nserde = { version = \"1\" }\n[workspace.lints.rust]\nx = 1\n";
        assert_eq!(third_party_dependencies(manifest), ["tokio", "serde"]);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_key("1.85").unwrap() < version_key("1.100.0").unwrap());
        assert_eq!(version_key("1.85"), Some((1, 85, 0)));
        assert_eq!(version_key("x"), None);
    }
}
