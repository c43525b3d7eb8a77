//! Running cargo and friends, and the errors of doing so.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

/// What a task can fail with.
#[derive(Debug)]
pub(crate) enum Error {
    /// The command line was wrong: exit code 2 and the usage.
    Usage(String),
    /// A step failed.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

pub(crate) type Result<T = ()> = std::result::Result<T, Error>;

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The target directory cargo uses.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Run `cargo args..` in the workspace root; fail if it fails.
pub(crate) fn cargo(args: &[&str]) -> Result {
    cargo_env(args, &[])
}

/// Run `cargo args..` with extra environment variables.
pub(crate) fn cargo_env(args: &[&str], env: &[(&str, &str)]) -> Result {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| Error::Failed(format!("could not start cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "`cargo {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Run `cargo args..` and return its stdout.
pub(crate) fn cargo_output(args: &[&str]) -> Result<String> {
    let out = Command::new(cargo_bin())
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| Error::Failed(format!("could not start cargo: {e}")))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "`cargo {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| Error::Failed(format!("`cargo {}` printed non-UTF-8", args.join(" "))))
}
