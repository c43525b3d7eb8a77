//! The script runner with real programs: literal arguments, the allow-list, the cleared
//! environment, killing a timed-out script's whole process group, exit codes, and the
//! `ExecuteScript` action.
//!
//! These run real processes, so their timeouts run in real time; they are kept short.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::FakeTarget;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use recovery_core::{RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError};
use recovery_healing::{
    HealingAction, HealingRule, RestartIntensity, ScriptError, ScriptRunner, ScriptSpec,
    SelfHealingStrategy,
};

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// A `/bin/sh` entry running `script` (read by the shell, not executed, so no "text file
/// busy" race with other tests' forks) with `args` after it.
fn sh(script: &Path, args: &[&str]) -> ScriptSpec {
    let mut all = vec![script.to_str().unwrap().to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    ScriptSpec::new("/bin/sh").unwrap().with_args(all)
}

/// Whether `pid` is gone (or a zombie, which runs nothing and only waits to be reaped).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the command name in parentheses.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}

/// Poll (real time, bounded) until `pid` is dead: SIGKILL is delivered asynchronously.
async fn wait_dead(pid: i32) -> bool {
    for _ in 0..200 {
        if is_dead(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The pids of live (not zombie) processes in process group `pgid`.
fn live_members(pgid: i32) -> Vec<i32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the command name: state, ppid, pgrp, ...
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && !matches!(fields[0], "Z" | "X") {
            live.push(pid);
        }
    }
    live
}

fn read_pid(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{} holds {text:?}: {e}", path.display()))
}

#[tokio::test]
async fn hostile_arguments_reach_the_program_literally() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("x");
    let marker2 = dir.path().join("y");
    let args = [
        "%s\n".to_owned(),
        "; rm -rf / #".to_owned(),
        format!("$(touch {})", marker.display()),
        format!("`touch {}`", marker2.display()),
        "a b | cat > /dev/null && echo pwned".to_owned(),
    ];
    let runner = ScriptRunner::new()
        .allow(
            "show",
            ScriptSpec::new("/usr/bin/printf")
                .unwrap()
                .with_args(args.clone()),
        )
        .unwrap();
    let out = runner.run("show").await.unwrap();
    assert!(out.succeeded(), "{out:?}");
    let expected: String = args[1..].iter().map(|a| format!("{a}\n")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert!(!marker.exists() && !marker2.exists());
}

#[tokio::test]
async fn a_shell_script_sees_its_arguments_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("x");
    let script = write_script(dir.path(), "args.sh", "printf '[%s]\\n' \"$@\"\n");
    let hostile = format!("$(touch {}); rm -rf / #", marker.display());
    let runner = ScriptRunner::new()
        .allow("args", sh(&script, &[&hostile]))
        .unwrap();
    let out = runner.run("args").await.unwrap();
    assert!(out.succeeded(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("[{hostile}]\n")
    );
    assert!(!marker.exists());
}

#[tokio::test]
async fn names_outside_the_allow_list_are_refused() {
    let runner = ScriptRunner::new()
        .allow("ok", ScriptSpec::new("/bin/echo").unwrap())
        .unwrap();
    for name in ["rm", "/bin/echo", "ok ", "ok; rm -rf /", ""] {
        assert!(
            matches!(runner.run(name).await, Err(ScriptError::NotAllowed(ref n)) if n == name),
            "{name:?}"
        );
    }
    assert!(matches!(
        ScriptSpec::new("bin/echo"),
        Err(ScriptError::RelativeProgram(_))
    ));
    assert!(matches!(
        runner.allow("ok", ScriptSpec::new("/bin/echo").unwrap()),
        Err(ScriptError::Duplicate(_))
    ));
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let runner = ScriptRunner::new()
        .allow("gone", ScriptSpec::new("/nonexistent/program").unwrap())
        .unwrap();
    let err = runner.run("gone").await.unwrap_err();
    assert!(matches!(err, ScriptError::Spawn { .. }));
    assert!(err.to_string().contains("/nonexistent/program"));
}

#[tokio::test]
async fn a_script_past_its_timeout_is_killed_with_its_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid = dir.path().join("child.pid");
    let grandchild_pid = dir.path().join("grandchild.pid");
    // Ignores SIGTERM (and so do the processes it starts: an ignored signal stays ignored
    // across exec), so only the SIGKILL to the whole group ends them.
    let script = write_script(
        dir.path(),
        "stubborn.sh",
        "trap '' TERM\n\
         sleep 30 &\n\
         echo $! > \"$2\"\n\
         echo $$ > \"$1\"\n\
         while :; do sleep 1; done\n",
    );
    let runner = ScriptRunner::new()
        .allow(
            "stubborn",
            sh(
                &script,
                &[
                    child_pid.to_str().unwrap(),
                    grandchild_pid.to_str().unwrap(),
                ],
            )
            .with_timeout(Duration::from_millis(400)),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let out = runner.run("stubborn").await.unwrap();
    assert!(out.timed_out, "{out:?}");
    assert!(!out.succeeded());
    assert_eq!(out.signal, Some(9), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let child = read_pid(&child_pid);
    let grandchild = read_pid(&grandchild_pid);
    assert!(wait_dead(child).await, "the script {child} is still alive");
    assert!(
        wait_dead(grandchild).await,
        "the script's child {grandchild} is still alive"
    );
    // Nothing is left running in its process group (whose id is the script's pid).
    assert_eq!(live_members(child), Vec::<i32>::new());
    // And signalling the group finds no live process, or only zombies awaiting reaping.
    if kill(Pid::from_raw(-child), None).is_ok() {
        assert!(live_members(child).is_empty());
    }
}

#[tokio::test]
async fn what_a_script_leaves_running_is_killed_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let bg_pid = dir.path().join("bg.pid");
    let script = write_script(
        dir.path(),
        "leaves.sh",
        "sleep 30 &\necho $! > \"$1\"\nexit 0\n",
    );
    let runner = ScriptRunner::new()
        .allow(
            "leaves",
            sh(&script, &[bg_pid.to_str().unwrap()]).with_timeout(Duration::from_secs(10)),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let out = runner.run("leaves").await.unwrap();
    assert!(out.succeeded(), "{out:?}");
    // It did not wait for the background sleep holding its stdout.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_dead(read_pid(&bg_pid)).await);
}

#[tokio::test]
async fn the_child_sees_only_allowed_variables() {
    let parent: Vec<(String, String)> = std::env::vars().collect();
    let path = std::env::var("PATH").expect("the test runs with PATH set");
    assert!(
        parent.iter().any(|(k, _)| k != "PATH"),
        "the parent has other variables to leak"
    );
    let runner = ScriptRunner::new()
        .allow(
            "env",
            ScriptSpec::new("/usr/bin/env")
                .unwrap()
                .with_allowed_env(["PATH", "HEALING_TEST_SURELY_UNSET"]),
        )
        .unwrap();
    let out = runner.run("env").await.unwrap();
    assert!(out.succeeded());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("PATH={path}\n")
    );

    let none = ScriptRunner::new()
        .allow("env", ScriptSpec::new("/usr/bin/env").unwrap())
        .unwrap();
    let out = none.run("env").await.unwrap();
    assert!(out.succeeded() && out.stdout.is_empty(), "{out:?}");
}

#[tokio::test]
async fn exit_codes_and_stderr_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "fail.sh", "echo oops >&2\nexit 3\n");
    let runner = ScriptRunner::new().allow("fail", sh(&script, &[])).unwrap();
    let out = runner.run("fail").await.unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert!(!out.succeeded() && !out.timed_out);
    assert_eq!(out.stderr, b"oops\n");
    assert!(!out.stderr_truncated && !out.stdout_truncated);
}

fn script_rule(id: &str, script: &str) -> HealingRule {
    HealingRule {
        rule_id: id.into(),
        error_pattern: "Storage".into(),
        healing_action: HealingAction::ExecuteScript(script.into()),
        cooldown_duration: Duration::from_secs(60),
        last_applied: None,
    }
}

#[tokio::test]
async fn execute_script_succeeds_only_on_exit_0_and_never_passes_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("x");
    let ok = write_script(dir.path(), "ok.sh", "echo \"argc=$#\"\nenv\nexit 0\n");
    let bad = write_script(dir.path(), "bad.sh", "exit 7\n");
    let runner = ScriptRunner::new()
        .allow("flush", sh(&ok, &[]))
        .unwrap()
        .allow("broken", sh(&bad, &[]))
        .unwrap();
    let target = FakeTarget::new(RestartIntensity::default());
    let ctx = RecoveryContext::new(target);

    let s = SelfHealingStrategy::empty().with_script_runner(runner.clone());
    s.add_healing_rule(script_rule("flush", "flush"))
        .await
        .unwrap();
    assert!(s.requires_external_resources().await);
    let hostile = SwarmError::Storage(format!("$(touch {}) ; rm -rf / #", marker.display()));
    let result = s.recover(&ctx, &hostile).await;
    assert!(result.success, "{result:?}");
    assert_eq!(
        result.action,
        RecoveryAction::Healed {
            rule_id: "flush".into(),
            action: "ExecuteScript(flush)".into()
        }
    );
    assert_eq!(result.metadata["exit_code"], "0");
    // No argument, and an environment holding only what the shell sets itself: nothing of the
    // error reached it.
    let stdout = &result.metadata["stdout"];
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("argc=0"));
    for var in lines {
        let name = var.split('=').next().unwrap();
        assert!(["PWD", "OLDPWD", "SHLVL", "_"].contains(&name), "{stdout}");
    }
    assert!(!stdout.contains("touch") && !stdout.contains("rm -rf"));
    assert!(!marker.exists());

    let s = SelfHealingStrategy::empty().with_script_runner(runner);
    s.add_healing_rule(script_rule("broken", "broken"))
        .await
        .unwrap();
    let result = s.recover(&ctx, &SwarmError::Storage("x".into())).await;
    assert!(!result.success);
    assert_eq!(result.metadata["exit_code"], "7");
    assert!(result.action_taken.contains("exited 7"));
}

#[tokio::test]
async fn an_abandoned_run_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid = dir.path().join("child.pid");
    let grandchild_pid = dir.path().join("grandchild.pid");
    let script = write_script(
        dir.path(),
        "long.sh",
        "sleep 30 &\necho $! > \"$2\"\necho $$ > \"$1\"\nwait\n",
    );
    let runner = ScriptRunner::new()
        .allow(
            "long",
            sh(
                &script,
                &[
                    child_pid.to_str().unwrap(),
                    grandchild_pid.to_str().unwrap(),
                ],
            )
            .with_timeout(Duration::from_secs(60)),
        )
        .unwrap();
    // A caller's deadline drops the run future part-way.
    let abandoned = tokio::time::timeout(Duration::from_millis(400), runner.run("long")).await;
    assert!(abandoned.is_err());
    let child = read_pid(&child_pid);
    let grandchild = read_pid(&grandchild_pid);
    assert!(wait_dead(child).await, "the script {child} is still alive");
    assert!(
        wait_dead(grandchild).await,
        "its child {grandchild} is still alive"
    );
}
