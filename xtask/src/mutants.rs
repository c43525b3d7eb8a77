//! `cargo xtask mutants`: each bug of issue 14 (and the smaller ones), put back into the code
//! by hand as a patch in `xtask/mutants/`, must be caught by the short soak.
//!
//! For each patch: a scratch worktree of `HEAD` (committed code only), the patch applied, the
//! drill built in release (one target directory shared by all mutants, so only the changed
//! crates rebuild), and the short soak's seeds run until one fails. A mutant that no seed
//! catches fails the task.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cmd::{self, Error};
use crate::soak::{Soak, run_seeds};

/// Run every mutant.
pub(crate) fn run() -> cmd::Result {
    let root = cmd::workspace_root();
    let mut patches: Vec<PathBuf> = std::fs::read_dir(root.join("xtask/mutants"))
        .map_err(|e| Error::Failed(format!("cannot read xtask/mutants: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    patches.sort();
    let scratch = cmd::target_dir().join("mutants");
    let tree = scratch.join("tree");
    let target = scratch.join("target");
    let soak = Soak::short();
    let mut caught = 0;
    for patch in &patches {
        let name = patch
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        fresh_worktree(&root, &tree)?;
        git(&tree, &["apply", &patch.to_string_lossy()]).map_err(|e| {
            Error::Failed(format!(
                "{name}: the patch no longer applies to HEAD ({e}); refresh it"
            ))
        })?;
        eprintln!("xtask: mutant {name}: building the drill");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--release", "-p", "swarm-drill"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&tree)
            .status()
            .map_err(|e| Error::Failed(format!("could not start cargo: {e}")))?;
        if !status.success() {
            return Err(Error::Failed(format!("{name}: the mutant does not build")));
        }
        let started = Instant::now();
        let outcome = run_seeds(&target.join("release").join("swarm-drill"), &soak, true)?;
        match outcome.failures.first() {
            Some(f) => {
                caught += 1;
                println!(
                    "mutants: {name}: caught by seed {} after {:.1} s: {}",
                    f.seed,
                    f.after.as_secs_f64(),
                    f.why
                );
            }
            None => println!(
                "mutants: {name}: NOT caught by {} seeds x {} days ({:.0} s)",
                soak.seeds,
                soak.days,
                started.elapsed().as_secs_f64()
            ),
        }
    }
    let _ = git(
        &root,
        &["worktree", "remove", "--force", &tree.to_string_lossy()],
    );
    println!(
        "mutants: {caught} of {} caught by the short soak ({} seeds x {} days)",
        patches.len(),
        soak.seeds,
        soak.days
    );
    if caught == patches.len() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{} mutants were not caught",
            patches.len() - caught
        )))
    }
}

/// A clean worktree of `HEAD` at `tree`.
fn fresh_worktree(root: &Path, tree: &Path) -> cmd::Result {
    let tree_s = tree.to_string_lossy();
    let _ = git(root, &["worktree", "remove", "--force", &tree_s]);
    let _ = std::fs::remove_dir_all(tree);
    git(root, &["worktree", "prune"])?;
    git(
        root,
        &["worktree", "add", "--detach", "--quiet", &tree_s, "HEAD"],
    )
}

fn git(dir: &Path, args: &[&str]) -> cmd::Result {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Failed(format!("could not start git: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
