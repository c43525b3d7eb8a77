//! The instance processes of the multi-instance drill: started as `swarm-drill` itself with the
//! hidden `--instance-of` flag, killed with SIGKILL, paused with SIGSTOP and continued.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use uuid::Uuid;

use super::InstanceOptions;
use crate::DrillError;

/// A running instance process.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) id: Uuid,
    /// It restored its agents from its store in the database.
    pub(crate) restored: bool,
    child: Child,
}

impl Process {
    /// Start the instance `o.name` and wait until it has joined (its first line).
    pub(crate) async fn start(o: &InstanceOptions) -> Result<Self, DrillError> {
        let exe = std::env::current_exe()
            .map_err(|e| DrillError::Setup(format!("cannot find the drill's own binary: {e}")))?;
        let mut child = Command::new(exe)
            .arg("--instance-of")
            .arg(&o.swarm)
            .arg("--instance-name")
            .arg(&o.name)
            .arg("--postgres")
            .arg(&o.url)
            .arg("--agents")
            .arg(o.agents.to_string())
            .arg("--task-time")
            .arg(format!("{}ms", o.task.as_millis()))
            .arg("--comm-error-rate")
            .arg(o.comm_error_rate.to_string())
            .arg("--seed")
            .arg(o.seed.to_string())
            .arg("--lease-ttl")
            .arg(format!("{}ms", o.lease_ttl.as_millis()))
            .arg("--renew-every")
            .arg(format!("{}ms", o.renew_every.as_millis()))
            .arg("--in-flight")
            .arg(o.max_in_flight.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("RUST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .map_err(|e| DrillError::Setup(format!("cannot start instance {}: {e}", o.name)))?;
        let stdout = child.stdout.take().expect("piped");
        let name = o.name.clone();
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await;
        let line = match line {
            Ok(Ok(Ok(line))) => line,
            _ => {
                let _ = child.kill();
                return Err(DrillError::Setup(format!(
                    "instance {name} did not start within 30 s"
                )));
            }
        };
        let id = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<Uuid>().ok())
            .ok_or_else(|| {
                DrillError::Setup(format!("instance {name} said {line:?}, not its id"))
            })?;
        let restored = line.split_whitespace().nth(2) == Some("restored");
        Ok(Self {
            name,
            id,
            restored,
            child,
        })
    }

    /// SIGKILL, and reap it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP (`pause`) or SIGCONT.
    pub(crate) fn signal(&self, pause: bool) -> Result<(), DrillError> {
        let status = Command::new("kill")
            .arg(if pause { "-STOP" } else { "-CONT" })
            .arg(self.child.id().to_string())
            .status()
            .map_err(|e| DrillError::Setup(format!("cannot run kill: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(DrillError::Setup(format!(
                "kill -STOP/-CONT of {} failed",
                self.name
            )))
        }
    }

    /// Close its stdin (it leaves the swarm and exits), waiting up to 10 s before killing it.
    pub(crate) async fn stop(mut self) {
        drop(self.child.stdin.take());
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
