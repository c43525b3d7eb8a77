//! What carrying out a healing action came to, before it becomes a `RecoveryResult`.

use std::collections::HashMap;

#[cfg(unix)]
use crate::script::ScriptOutput;

pub(crate) enum Outcome {
    Done {
        detail: String,
        confidence: f64,
        continue_recovery: bool,
        metadata: HashMap<String, String>,
    },
    Failed {
        reason: String,
        metadata: HashMap<String, String>,
    },
    Escalated(String),
    /// The action found nothing to do (no task needed moving): not a success.
    Unchanged(String),
}

impl Outcome {
    pub(crate) fn done(detail: String, confidence: f64) -> Self {
        Self::Done {
            detail,
            confidence,
            continue_recovery: false,
            metadata: HashMap::new(),
        }
    }

    pub(crate) fn failed(reason: String) -> Self {
        Self::Failed {
            reason,
            metadata: HashMap::new(),
        }
    }

    pub(crate) fn metadata(&mut self, key: &str, value: String) {
        match self {
            Self::Done { metadata, .. } | Self::Failed { metadata, .. } => {
                metadata.insert(key.to_owned(), value);
            }
            Self::Escalated(_) | Self::Unchanged(_) => {}
        }
    }
}

#[cfg(unix)]
/// How much of a script's output goes into a result's metadata.
const OUTPUT_IN_METADATA: usize = 1024;

#[cfg(unix)]
pub(crate) fn script_outcome(script: &str, output: &ScriptOutput) -> Outcome {
    let mut outcome = if output.succeeded() {
        Outcome::done(format!("script `{script}` exited 0"), 0.7)
    } else if output.timed_out {
        Outcome::failed(format!(
            "script `{script}` ran past its timeout and was killed"
        ))
    } else if let Some(code) = output.exit_code {
        Outcome::failed(format!("script `{script}` exited {code}"))
    } else {
        Outcome::failed(format!(
            "script `{script}` was killed by signal {}",
            output.signal.unwrap_or_default()
        ))
    };
    if let Some(code) = output.exit_code {
        outcome.metadata("exit_code", code.to_string());
    }
    let head = |bytes: &[u8]| {
        String::from_utf8_lossy(&bytes[..bytes.len().min(OUTPUT_IN_METADATA)]).into_owned()
    };
    outcome.metadata("stdout", head(&output.stdout));
    outcome.metadata("stderr", head(&output.stderr));
    outcome.metadata(
        "output_truncated",
        (output.stdout_truncated || output.stderr_truncated).to_string(),
    );
    outcome.metadata("timed_out", output.timed_out.to_string());
    outcome
}
