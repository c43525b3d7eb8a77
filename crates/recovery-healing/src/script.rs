//! Allow-listed scripts, run with no shell, a cleared environment, a timeout that kills the
//! whole process group, and capped output.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::error::ScriptError;

/// One allow-list entry: the program and everything it is run with, all fixed by the operator.
///
/// # Default
///
/// No arguments, no environment variables, a 30 s timeout, a 64 KiB cap on each of stdout and
/// stderr.
///
/// ```
/// use std::time::Duration;
/// use recovery_healing::ScriptSpec;
///
/// let spec = ScriptSpec::new("/usr/local/sbin/flush-dns-cache").unwrap()
///     .with_args(["--all"])
///     .with_allowed_env(["PATH"])
///     .with_timeout(Duration::from_secs(10))
///     .with_output_cap(16 * 1024);
/// assert!(ScriptSpec::new("flush-dns-cache").is_err()); // not absolute
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSpec {
    program: PathBuf,
    args: Vec<String>,
    allowed_env: Vec<String>,
    timeout: Duration,
    output_cap: usize,
}

impl ScriptSpec {
    /// An entry running `program`, which must be an absolute path.
    pub fn new(program: impl Into<PathBuf>) -> Result<Self, ScriptError> {
        let program = program.into();
        if !program.is_absolute() {
            return Err(ScriptError::RelativeProgram(program));
        }
        Ok(Self {
            program,
            args: Vec::new(),
            allowed_env: Vec::new(),
            timeout: Duration::from_secs(30),
            output_cap: 64 * 1024,
        })
    }

    /// The fixed arguments, passed to the program as they are (no shell sees them).
    pub fn with_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The names of the parent's environment variables the program may see (copied when set).
    pub fn with_allowed_env<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.allowed_env = names.into_iter().map(Into::into).collect();
        self
    }

    /// How long the program may run before its process group is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many bytes of stdout and of stderr are kept (the rest is read and discarded).
    pub fn with_output_cap(mut self, bytes: usize) -> Self {
        self.output_cap = bytes;
        self
    }

    /// The program.
    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// The fixed arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The allowed variable names.
    pub fn allowed_env(&self) -> &[String] {
        &self.allowed_env
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The output cap, per stream.
    pub fn output_cap(&self) -> usize {
        self.output_cap
    }
}

/// What a script run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOutput {
    /// The exit code, if it exited (rather than being killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Whether it ran past its timeout and was killed.
    pub timed_out: bool,
    /// The first `output_cap` bytes of its standard output.
    pub stdout: Vec<u8>,
    /// Whether standard output was longer than the cap.
    pub stdout_truncated: bool,
    /// The first `output_cap` bytes of its standard error.
    pub stderr: Vec<u8>,
    /// Whether standard error was longer than the cap.
    pub stderr_truncated: bool,
    /// How long it ran.
    pub duration: Duration,
}

impl ScriptOutput {
    /// Whether it exited with status 0 in time.
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// How long after SIGTERM a timed-out script's group gets SIGKILL.
const DEFAULT_GRACE: Duration = Duration::from_millis(200);

/// Runs scripts by name from an operator's allow-list.
///
/// # What it promises
///
/// - **Only allow-listed programs run.** A name outside the list is refused
///   ([`ScriptError::NotAllowed`]); the program is an absolute path fixed by the operator.
/// - **No shell, and nothing from outside becomes an argument.** The program is started directly
///   (`execve`) with the operator's fixed arguments only; [`run`](Self::run) takes a name and
///   nothing else, so no error message or context can reach the command line. An argument like
///   `$(touch /tmp/x)` or `; rm -rf / #` reaches the program as that literal text.
/// - **A cleared environment.** The program sees only the variables named in its
///   [`ScriptSpec::with_allowed_env`], with the parent's values; its stdin is `/dev/null`.
/// - **A timeout that kills everything it started.** The program leads a new process group;
///   at the timeout the group gets SIGTERM, then SIGKILL after a short grace (200 ms), so
///   children and grandchildren die with it. When the program exits by itself, whatever it
///   left running in its group is killed too, and so is the group when the `run` future is
///   dropped before the end: nothing of a script outlives its run. (A process
///   that deliberately leaves the group, with `setsid`, escapes; the allow-list is the defence
///   against such programs.)
/// - **Bounded memory.** At most `output_cap` bytes of each of stdout and stderr are kept;
///   the rest is read and discarded so the program never blocks on a full pipe, and the output
///   says it was truncated.
///
/// ```
/// use recovery_healing::{ScriptRunner, ScriptSpec};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let runner = ScriptRunner::new()
///     .allow("greet", ScriptSpec::new("/bin/echo")?.with_args(["hello", "$(whoami)"]))?;
/// let out = runner.run("greet").await?;
/// assert!(out.succeeded());
/// assert_eq!(out.stdout, b"hello $(whoami)\n");
/// assert!(runner.run("rm").await.is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    scripts: BTreeMap<String, ScriptSpec>,
    grace: Duration,
}

impl Default for ScriptRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptRunner {
    /// A runner with an empty allow-list.
    pub fn new() -> Self {
        Self {
            scripts: BTreeMap::new(),
            grace: DEFAULT_GRACE,
        }
    }

    /// This runner with `spec` allowed under `name`.
    pub fn allow(mut self, name: impl Into<String>, spec: ScriptSpec) -> Result<Self, ScriptError> {
        let name = name.into();
        if self.scripts.contains_key(&name) {
            return Err(ScriptError::Duplicate(name));
        }
        self.scripts.insert(name, spec);
        Ok(self)
    }

    /// Whether `name` is allowed.
    pub fn is_allowed(&self, name: &str) -> bool {
        self.scripts.contains_key(name)
    }

    /// The allowed names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scripts.keys().map(String::as_str)
    }

    /// The entry allowed under `name`.
    pub fn spec(&self, name: &str) -> Option<&ScriptSpec> {
        self.scripts.get(name)
    }

    /// Run the script allowed under `name` as described on [`ScriptRunner`], and wait until it
    /// and its process group are gone.
    pub async fn run(&self, name: &str) -> Result<ScriptOutput, ScriptError> {
        let spec = self
            .scripts
            .get(name)
            .ok_or_else(|| ScriptError::NotAllowed(name.to_owned()))?;
        let io_err = |source| ScriptError::Io {
            name: name.to_owned(),
            source,
        };

        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(allowed_env(&spec.allowed_env))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command.spawn().map_err(|source| ScriptError::Spawn {
            name: name.to_owned(),
            program: spec.program.clone(),
            source,
        })?;
        // The child leads its own group, whose id is its pid. If this future is dropped (a
        // caller's deadline), the guard kills the whole group, not only the leader.
        let group = child.id().map(|pid| Pid::from_raw(pid as i32));
        let mut guard = GroupGuard(group);
        let stdout = tokio::spawn(read_capped(child.stdout.take(), spec.output_cap));
        let stderr = tokio::spawn(read_capped(child.stderr.take(), spec.output_cap));

        let (status, timed_out) = match tokio::time::timeout(spec.timeout, child.wait()).await {
            Ok(status) => {
                // Kill whatever the script left running in its group. The leader is reaped, but
                // while any member lives the kernel does not hand its id to a new process.
                if let Some(group) = group {
                    signal_group(group, Signal::SIGKILL);
                }
                (status.map_err(io_err)?, false)
            }
            Err(_) => {
                // Not reaped yet, so the group id cannot have been reused.
                let status = self.kill_group(&mut child, group).await.map_err(io_err)?;
                (status, true)
            }
        };
        guard.0 = None;
        let duration = started.elapsed();

        // Every writer of the pipes in the group is dead now, so the readers end. A process that
        // left the group (setsid) could hold a pipe open: bound the wait, and report what such a
        // stream held as lost (empty and truncated).
        let drain = self.grace.max(Duration::from_secs(1));
        let (stdout, stdout_truncated) = join_reader(stdout, drain).await.map_err(io_err)?;
        let (stderr, stderr_truncated) = join_reader(stderr, drain).await.map_err(io_err)?;

        use std::os::unix::process::ExitStatusExt;
        Ok(ScriptOutput {
            exit_code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout,
            stdout_truncated,
            stderr,
            stderr_truncated,
            duration,
        })
    }

    /// SIGTERM the group, give it the grace period, then SIGKILL it; reap the leader.
    async fn kill_group(
        &self,
        child: &mut Child,
        group: Option<Pid>,
    ) -> std::io::Result<std::process::ExitStatus> {
        let Some(group) = group else {
            return child.wait().await;
        };
        signal_group(group, Signal::SIGTERM);
        let status = match tokio::time::timeout(self.grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                signal_group(group, Signal::SIGKILL);
                child.wait().await
            }
        };
        // The leader may have died of SIGTERM while children ignore it.
        signal_group(group, Signal::SIGKILL);
        status
    }
}

/// Kills a script's process group when a run is abandoned before it finished.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            signal_group(group, Signal::SIGKILL);
        }
    }
}

fn signal_group(group: Pid, signal: Signal) {
    match killpg(group, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(group = group.as_raw(), %signal, error = %e, "cannot signal a script's process group")
        }
    }
}

fn allowed_env(names: &[String]) -> Vec<(String, OsString)> {
    names
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|v| (name.clone(), v)))
        .collect()
}

type Captured = std::io::Result<(Vec<u8>, bool)>;

async fn join_reader(mut handle: tokio::task::JoinHandle<Captured>, drain: Duration) -> Captured {
    match tokio::time::timeout(drain, &mut handle).await {
        Ok(joined) => {
            joined.map_err(|e| std::io::Error::other(format!("output reader failed: {e}")))?
        }
        Err(_) => {
            handle.abort();
            Ok((Vec::new(), true))
        }
    }
}

/// Read `reader` to its end, keeping at most `cap` bytes; say whether more came.
async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize) -> Captured {
    let Some(mut reader) = reader else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::with_capacity(cap.min(64 * 1024));
    let mut chunk = vec![0u8; 64 * 1024];
    let mut truncated = false;
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = cap - kept.len();
        let take = n.min(room);
        kept.extend_from_slice(&chunk[..take]);
        truncated |= take < n;
    }
}
