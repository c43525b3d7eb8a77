//! Kill a checkpoint writer with SIGKILL at random moments and check that no checkpoint is ever
//! torn or lost.
//!
//! ```text
//! cargo run --release -p recovery-checkpoint --example crash_test -- --iterations 200 [--dir DIR]
//! ```
//!
//! The same program is parent and child. The parent starts itself with `--child DIR`; the child
//! writes checkpoints to a `FileStore` in DIR in a loop and prints `SEQUENCE ID` on a line of
//! its own once each `put` has returned. After a random delay (3 to 50 ms) the parent kills it
//! with SIGKILL, reopens the store and checks:
//!
//! - every checkpoint listed reads back intact and decodes to exactly the state written for
//!   its sequence number (otherwise it is counted **torn**);
//! - `latest()` is at least as new as the last sequence number the child reported (otherwise
//!   that checkpoint was **lost**).
//!
//! It ends with one line, `crash-test: N kills, T torn, L lost`, and exits non-zero unless both
//! counts are 0. SIGKILL leaves the page cache intact, so this tests atomicity against a
//! process crash, not durability against power loss.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use rand::Rng;
use recovery_checkpoint::{CheckpointError, CheckpointStore, Codec, FileStore};
use serde::{Deserialize, Serialize};

/// What the child writes for sequence number `n`: its size and contents follow from `n`, so the
/// parent can tell whether what it reads back is exactly it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct State {
    sequence: u64,
    words: Vec<u64>,
    text: String,
}

fn state_for(sequence: u64) -> State {
    let len = 2_000 + (sequence * 7_919 % 30_000) as usize;
    State {
        sequence,
        words: (0..len as u64)
            .map(|i| i.wrapping_mul(sequence | 1))
            .collect(),
        text: format!("checkpoint {sequence}").repeat(1 + (sequence % 50) as usize),
    }
}

const USAGE: &str = "usage: crash_test --iterations N [--dir DIR]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Mode::Child(dir)) => child(&dir),
        Ok(Mode::Parent { iterations, dir }) => parent(iterations, dir),
        Err(msg) => {
            eprintln!("crash_test: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

enum Mode {
    Parent {
        iterations: u32,
        dir: Option<PathBuf>,
    },
    Child(PathBuf),
}

fn parse(args: &[String]) -> Result<Mode, String> {
    let mut iterations = 200;
    let mut dir = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} wants a value"));
        match arg.as_str() {
            "--child" => return Ok(Mode::Child(PathBuf::from(value()?))),
            "--iterations" => {
                let v = value()?;
                iterations = v
                    .parse()
                    .map_err(|_| format!("--iterations wants a number, got `{v}`"))?;
            }
            "--dir" => dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Mode::Parent { iterations, dir })
}

/// Write checkpoints until killed.
fn child(dir: &Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crash_test child: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), CheckpointError> = runtime.block_on(async {
        let store = FileStore::open(dir)?;
        let stdout = std::io::stdout();
        loop {
            // The sequence the store will assign next is not known before `put`; write the
            // state for a guess and check it after: the parent verifies by the header's number.
            let next = store.list().await?.first().map_or(1, |i| i.sequence + 1);
            let payload = Codec::CURRENT.encode(&state_for(next))?;
            let info = store.put(Codec::CURRENT, payload).await?;
            if info.sequence != next {
                return Err(CheckpointError::Malformed {
                    reason: format!("expected sequence {next}, store assigned {}", info.sequence),
                });
            }
            let mut out = stdout.lock();
            let _ = writeln!(out, "{} {}", info.sequence, info.id);
            let _ = out.flush();
            drop(out);
            store.retain_newest(5).await?;
        }
    });
    if let Err(e) = result {
        eprintln!("crash_test child: {e}");
    }
    ExitCode::FAILURE
}

fn parent(iterations: u32, dir: Option<PathBuf>) -> ExitCode {
    let temp;
    let dir = match dir {
        Some(d) => d,
        None => match tempfile::tempdir() {
            Ok(t) => {
                temp = t;
                temp.path().to_owned()
            }
            Err(e) => {
                eprintln!("crash_test: cannot make a temp dir: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("crash_test: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let mut rng = rand::rng();
    let (mut kills, mut torn, mut lost) = (0u32, 0u32, 0u32);
    let mut last_reported: Option<u64> = None;
    for _ in 0..iterations {
        let mut child = match Command::new(&exe)
            .arg("--child")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("crash_test: cannot start the child: {e}");
                return ExitCode::FAILURE;
            }
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(3..=50)));
        // Child::kill sends SIGKILL on Unix.
        let _ = child.kill();
        let _ = child.wait();
        kills += 1;
        // Only complete lines count: a line is printed after `put` returned.
        if let Some(out) = child.stdout.take() {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let seq = line.split_whitespace().next().and_then(|s| s.parse().ok());
                if line.ends_with('\n') && seq.is_some() {
                    last_reported = seq;
                }
                line.clear();
            }
        }
        let (t, l) = runtime.block_on(check(&dir, last_reported));
        torn += t;
        lost += l;
    }
    println!("crash-test: {kills} kills, {torn} torn, {lost} lost");
    if torn == 0 && lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Reopen the store after a kill; count torn checkpoints and whether the last reported one is
/// lost.
async fn check(dir: &Path, last_reported: Option<u64>) -> (u32, u32) {
    let store = match FileStore::open(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crash_test: the store does not open after a kill: {e}");
            return (1, u32::from(last_reported.is_some()));
        }
    };
    let mut torn = 0;
    let listed = match store.list().await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("crash_test: cannot list: {e}");
            return (1, 1);
        }
    };
    for info in &listed {
        let intact = match store.get(info.id).await {
            Ok(c) => Codec::CURRENT
                .decode::<State>(&c.payload)
                .is_ok_and(|s| s == state_for(info.sequence)),
            // Deleted by retention between list and get: not torn.
            Err(CheckpointError::NotFound { .. }) => true,
            Err(_) => false,
        };
        if !intact {
            eprintln!(
                "crash_test: torn checkpoint #{} ({})",
                info.sequence, info.id
            );
            torn += 1;
        }
    }
    let lost = match (store.latest().await, last_reported) {
        (Ok(latest), Some(seq)) if latest.sequence >= seq => 0,
        (Ok(latest), Some(seq)) => {
            eprintln!(
                "crash_test: lost: latest is #{}, #{seq} was reported",
                latest.sequence
            );
            1
        }
        (Err(e), Some(seq)) => {
            eprintln!("crash_test: lost: no latest checkpoint ({e}), #{seq} was reported");
            1
        }
        (_, None) => 0,
    };
    (torn, lost)
}
