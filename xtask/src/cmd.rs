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
    /// A program run for the user (the drill) exited with this code: passed through as is.
    Exit(u8),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
            Error::Exit(code) => write!(f, "exited with code {code}"),
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

/// Run `cargo test args..` with extra environment variables, its output shown as it comes;
/// returns the tests passed and failed over every `test result:` line it printed.
pub(crate) fn cargo_test(args: &[&str], env: &[(&str, &str)]) -> (Result, u64, u64) {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("xtask: cargo {}", args.join(" "));
    let child = Command::new(cargo_bin())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return (
                Err(Error::Failed(format!("could not start cargo: {e}"))),
                0,
                0,
            );
        }
    };
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = writeln!(stdout, "{line}");
            if let Some((p, f)) = test_result(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    let outcome = match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(Error::Failed(format!(
            "`cargo {}` failed ({status})",
            args.join(" ")
        ))),
        Err(e) => Err(Error::Failed(format!("waiting for cargo: {e}"))),
    };
    (outcome, passed, failed)
}

/// The counts of a libtest summary line: `test result: ok. 12 passed; 1 failed; ...`.
fn test_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .trim()
                .rsplit(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::test_result;

    #[test]
    fn libtest_summary_lines_are_counted() {
        assert_eq!(
            test_result(
                "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some((12, 0))
        );
        assert_eq!(
            test_result("test result: FAILED. 3 passed; 2 failed; 0 ignored"),
            Some((3, 2))
        );
        assert_eq!(test_result("running 4 tests"), None);
    }
}
