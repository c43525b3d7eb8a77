//! The drill binary as a user runs it: flags, exit codes, the report and its JSON.

use std::process::Command;

fn drill() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swarm-drill"));
    c.env_remove("RUST_LOG");
    c
}

/// The JSON report a run wrote to `path`.
fn read_report(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_small_drill_loses_nothing_and_ends_with_the_summary_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = drill()
        .args([
            "--agents",
            "8",
            "--tasks",
            "1500",
            "--seed",
            "3",
            "--comm-error-rate",
            "0.1",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("drill: 1500 tasks, "), "{last}");
    assert!(last.contains(" 0 lost, recoveries "), "{last}");
    let report = read_report(&json);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["tasks"], 1500);
    let settled = report["completed"].as_u64().unwrap()
        + report["failed"].as_u64().unwrap()
        + report["refused"].as_u64().unwrap();
    assert_eq!(settled, 1500, "every task is accounted for");
    assert!(report["faults_injected"]["communication"].as_u64().unwrap() > 50);
    assert!(
        report["recoveries"]["exponential_backoff"]["successes"]
            .as_u64()
            .unwrap()
            > 50
    );
}

/// More tasks than the coordinator keeps once finished (`finished_retention`, 10,000): every
/// failed task still has its reason counted.
#[test]
fn every_failed_task_has_its_reason_counted_past_the_coordinators_retention() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = drill()
        .args(["--tasks", "10500", "--fatal-rate", "0.01", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = read_report(&json);
    let failed = report["failed"].as_u64().unwrap();
    let by_reason: u64 = report["failed_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(failed > 50, "the fatal faults fail tasks: {failed}");
    assert_eq!(by_reason, failed, "{}", report["failed_by_reason"]);
}

#[test]
fn a_bad_flag_is_a_clear_error_with_exit_code_2() {
    for args in [
        vec!["--agents", "zero"],
        vec!["--comm-error-rate", "1.5"],
        vec!["--duration-limit", "soon"],
        vec!["--no-such-flag"],
    ] {
        let out = drill().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(
            stderr.contains(args[0]),
            "the message names the flag: {stderr}"
        );
    }
    let out = drill()
        .args(["--comm-error-rate", "0.7", "--crash-rate", "0.7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sum"));
}

#[test]
fn a_bad_config_file_names_the_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recovery.toml");
    std::fs::write(&path, "[backoff]\nmultiplier = 0.5\n").unwrap();
    let out = drill().arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("multiplier"), "{stderr}");

    let out = drill()
        .args(["--config", "/no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.toml"));
}

#[test]
fn the_same_seed_gives_the_same_fault_plan() {
    let digest = |seed: &str| {
        let out = drill()
            .args(["--agents", "4", "--tasks", "200", "--seed", seed])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .lines()
            .find_map(|l| {
                l.split("fault plan ")
                    .nth(1)
                    .map(|d| d.trim_end_matches(')').to_owned())
            })
            .unwrap()
    };
    assert_eq!(digest("11"), digest("11"));
    assert_ne!(digest("11"), digest("12"));
}

#[test]
fn checkpoints_are_kept_in_the_directory_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = drill()
        .args(["--agents", "4", "--tasks", "300"])
        .arg("--checkpoint-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(files >= 1, "the first checkpoint is on disk");
}

#[test]
fn an_unusable_checkpoint_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = drill()
        .args(["--tasks", "10"])
        .arg("--checkpoint-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-dir"));
}

#[test]
fn a_config_file_with_a_short_history_still_counts_every_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recovery.toml");
    std::fs::write(&path, "[recovery]\nhistory_retention = 10\n").unwrap();
    let json = dir.path().join("report.json");
    let out = drill()
        .args([
            "--agents",
            "4",
            "--tasks",
            "400",
            "--comm-error-rate",
            "0.2",
        ])
        .arg("--config")
        .arg(&path)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&json);
    assert!(report["recovery_attempts"].as_u64().unwrap() > 10);
    // The file leaves the monitoring interval at the spec's 30 s: the drill says what that does.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("monitoring_interval is 30s") && stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn a_negative_number_is_refused_with_the_flag_named() {
    for (flag, value) in [
        ("--comm-error-rate", "-0.1"),
        ("--tasks", "-5"),
        ("--seed", "-1"),
    ] {
        let out = drill().args([flag, value]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("unexpected argument"), "{stderr}");
    }
}

#[test]
fn no_tasks_claims_no_recovery_rate_and_the_report_records_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = drill()
        .args([
            "--tasks",
            "0",
            "--agents",
            "2",
            "--seed",
            "11",
            "--timeout-rate",
            "0.25",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(!last.contains("succeeded"), "{last}");
    assert!(last.ends_with("no recoveries"), "{last}");
    let report = read_report(&json);
    let options = &report["options"];
    assert_eq!(options["seed"], 11);
    assert_eq!(options["agents"], 2);
    assert_eq!(options["tasks"], 0);
    assert_eq!(options["rates"]["timeout"], 0.25);
    assert!(options["settings"]["backoff"].is_object(), "{options}");
}

#[test]
fn logs_carry_no_colour_when_stderr_is_not_a_terminal() {
    let out = drill()
        .env("RUST_LOG", "info")
        .args(["--tasks", "50", "--agents", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO"), "some log lines: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "an escape sequence in piped logs"
    );
}

#[test]
fn the_html_report_is_one_self_contained_page_with_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let out = drill()
        .args(["--tasks", "800", "--agents", "4"])
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    for title in [
        "Completed tasks",
        "Faults and recovery attempts",
        "Degradation level",
        "Runs in flight",
    ] {
        assert!(page.contains(title), "{title}");
    }
    assert!(
        page.contains("fault-free"),
        "the fault-free run is drawn beside it"
    );
    assert!(page.contains("drill: 800 tasks"), "the closing line");
    assert!(
        !page.contains("<script") && !page.contains("src=") && !page.contains("href=\"http"),
        "nothing fetched"
    );
    assert!(!page.contains("NaN"));
}

#[test]
fn breakers_from_the_config_file_run_in_the_drill_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("breaker.toml");
    std::fs::write(
        &good,
        "[breaker]\nwindow = 10\nminimum_calls = 5\nfailure_rate_threshold = 0.4\nopen_for = \"200ms\"\n",
    )
    .unwrap();
    let out = drill()
        .args(["--tasks", "3000", "--agents", "16", "--crash-rate", "0.03"])
        .arg("--config")
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("circuit breakers"), "{stdout}");
    let opened: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("opened")?.trim().parse().ok())
        .unwrap();
    assert!(opened > 0, "crashing agents opened breakers:\n{stdout}");
    assert!(stdout.lines().last().unwrap().contains(" 0 lost"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[breaker]\nwindow = 10\nminimum_calls = 50\n").unwrap();
    let out = drill().arg("--config").arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[breaker]") && stderr.contains("`minimum_calls`"),
        "{stderr}"
    );
}

#[test]
fn simulation_flags_with_bad_values_are_usage_errors_that_say_what_is_wrong() {
    for (args, expect) in [
        (
            &["--simulate", "--fault", "wedgd=3"][..],
            "there is no fault `wedgd`; the faults are communication",
        ),
        (
            &["--simulate", "--fault", "wedged"][..],
            "is not NAME=PER_HOUR",
        ),
        (
            &["--simulate", "--fault", "wedged=-2"][..],
            "the `wedged` fault rate is -2 an hour",
        ),
        (
            &["--simulate", "--prediction-lead", "0s"][..],
            "--prediction-lead must be longer than zero",
        ),
        (
            &["--simulate", "--monitoring-interval", "1ms"][..],
            "--monitoring-interval is 1ms",
        ),
        (&["--learned-order"][..], "--simulate"),
    ] {
        let out = drill().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
