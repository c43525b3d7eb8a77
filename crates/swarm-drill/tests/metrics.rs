//! The drill's metrics as Prometheus sees them: scraped over loopback while a drill runs, every
//! metric of `recovery_manager::metrics::ALL` found with a plausible value and small label
//! sets; and the Grafana dashboard queries only metrics the code emits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use recovery_manager::metrics::{self as names, ALL};

/// `GET /metrics` over a plain socket; the body.
fn scrape(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// One sample line: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The exposition format's sample lines (comments skipped); panics on a malformed line.
fn parse(body: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels: {line}"));
                let labels = rest
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label: {line}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        samples.push((name, labels, value));
    }
    samples
}

fn total(samples: &[Sample], name: &str) -> Option<f64> {
    let mut found = false;
    let sum = samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .inspect(|_| found = true)
        .map(|(_, _, v)| v)
        .sum();
    found.then_some(sum)
}

#[test]
fn a_running_drill_serves_every_documented_metric_over_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_swarm-drill"))
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "60s",
            "--tasks",
            "20000",
        ])
        .arg("--json")
        .arg(&json)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr_tx, addr_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("drill: metrics for Prometheus at http://") {
                let _ = addr_tx.send(url.trim_end_matches("/metrics").to_owned());
            }
        }
    });
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("drill: ") {
                let _ = done_tx.send(line);
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the drill printed its metrics address");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // Scrape while it runs, then once it has reported.
    let mut during = 0;
    let started = Instant::now();
    let last_line = loop {
        if let Ok(line) = done_rx.try_recv() {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the drill did not finish"
        );
        if let Some(body) = scrape(&addr) {
            parse(&body);
            during += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let body = scrape(&addr).expect("the drill still serves its metrics while it lingers");
    let _ = child.kill();
    let _ = child.wait();
    assert!(during > 0, "scraped during the run");
    assert!(last_line.contains(" 0 lost"), "{last_line}");

    let samples = parse(&body);
    let allowed: BTreeSet<&str> = ["strategy", "error_kind", "outcome", "action", "le"].into();
    for (name, labels, _) in &samples {
        if name.starts_with("swarm_") {
            for k in labels.keys() {
                assert!(
                    allowed.contains(k.as_str()),
                    "{name} has the label {k}: ids are never labels"
                );
            }
        }
    }
    let attempts = total(&samples, names::ATTEMPTS).expect("attempts");
    assert!(attempts > 100.0, "{attempts} attempts");
    // One duration per attempt, strategy by strategy.
    let per = |name: &str| {
        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        for (n, l, v) in &samples {
            if n == name {
                *m.entry(l.get("strategy").cloned().unwrap_or_default())
                    .or_default() += v;
            }
        }
        m
    };
    let durations = per(&format!("{}_count", names::DURATION));
    for (strategy, n) in per(names::ATTEMPTS) {
        assert_eq!(
            durations.get(&strategy).copied().unwrap_or(0.0),
            n,
            "durations of {strategy}"
        );
    }
    assert!(
        total(&samples, &format!("{}_bucket", names::DURATION)).is_some(),
        "a histogram, with buckets"
    );
    // The same counts as the drill's own report (written before it lingers).
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let reported = |key: &str| report[key].as_f64().unwrap();
    assert!(total(&samples, names::MANUAL_INTERVENTIONS).unwrap() > 0.0);
    assert_eq!(reported("recovery_attempts"), attempts);
    // The metric counts restores that verified (a successful checkpoint recovery); the
    // coordinator counts every restore applied, also one that a concurrent run changed before
    // the check, so that the strategy reported failure and the manager went on.
    let restored = total(&samples, names::CHECKPOINTS_RESTORED).unwrap_or(0.0);
    assert_eq!(
        restored,
        report["recoveries"]["checkpoint_recovery"]["successes"]
            .as_f64()
            .unwrap_or(0.0),
        "{}",
        report["recoveries"]
    );
    assert!(
        reported("checkpoints_restored") >= restored,
        "{} applied, {restored} verified",
        reported("checkpoints_restored")
    );
    assert!(total(&samples, names::CHECKPOINTS_CREATED).unwrap() > 0.0);
    let healed: f64 = report["healing_actions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(
        total(&samples, names::HEALING_ACTIONS).unwrap_or(0.0),
        healed,
        "healing actions"
    );
    let level = total(&samples, names::DEGRADATION_LEVEL).unwrap();
    assert!((0.0..=3.0).contains(&level), "level {level}");
    for name in ALL {
        if name == names::HEALING_ACTIONS && healed == 0.0 {
            continue; // a counter appears with its first increment
        }
        let found = samples
            .iter()
            .any(|(n, _, _)| n == name || n.starts_with(&format!("{name}_")));
        assert!(found, "{name} was not exported");
    }
}

#[test]
fn the_dashboard_queries_only_metrics_the_code_emits_and_shows_them_all() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/swarm-recovery.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("swarm_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| *b == names::DURATION))
                    .unwrap_or(&name)
                    .to_owned();
                queried.insert(base);
            }
        }
    }
    let emitted: BTreeSet<String> = ALL.iter().map(|s| (*s).to_owned()).collect();
    let unknown: Vec<_> = queried.difference(&emitted).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics nobody emits: {unknown:?}"
    );
    let missing: Vec<_> = emitted.difference(&queried).collect();
    assert!(
        missing.is_empty(),
        "emitted but not on the dashboard: {missing:?}"
    );
}
