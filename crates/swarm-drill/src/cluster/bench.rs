//! The multi-instance bench (`swarm-drill --postgres URL --bench`): the scenario of issue 16's
//! table. 10,000 tasks of 10 ms on 1, 2 and 3 instance processes, then no-op tasks on one, then
//! the claim latency of one instance at a steady submission rate. Times come from the server's
//! clock (claims and ends as the database recorded them), so process start-up is not counted.

use std::fmt::Write;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use swarm_integration::TaskSpec;
use uuid::Uuid;

use super::ClusterOptions;
use super::children::Process;
use super::db;
use crate::DrillError;

/// The bench's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BenchReport {
    /// Agents per instance.
    pub agents: usize,
    /// Tasks per throughput run.
    pub tasks: u64,
    /// Tasks/s of 10 ms tasks with 1, 2, 3 instances.
    pub throughput: Vec<(usize, f64)>,
    /// Tasks/s of no-op tasks with one instance.
    pub noop: f64,
    /// The steady submission rate of the latency run, tasks/s.
    pub latency_rate: f64,
    /// Submission to claim, median, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// Worst, ms.
    pub latency_max_ms: f64,
}

impl BenchReport {
    /// The table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "swarm-postgres bench: {} tasks per run, {} agents per instance, one PostgreSQL server",
            self.tasks, self.agents
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "| | swarm-postgres |");
        let _ = writeln!(s, "|---|---|");
        let per: Vec<String> = self
            .throughput
            .iter()
            .map(|(_, t)| format!("{t:.0}"))
            .collect();
        let _ = writeln!(
            s,
            "| 10 ms tasks, tasks/s with 1 / 2 / 3 instances | {} |",
            per.join(" / ")
        );
        if let (Some((_, one)), Some((_, three))) =
            (self.throughput.first(), self.throughput.get(2))
        {
            let _ = writeln!(s, "| 3 instances over 1 | {:.2} x |", three / one);
        }
        let _ = writeln!(s, "| no-op tasks, 1 instance | {:.0}/s |", self.noop);
        let _ = writeln!(
            s,
            "| submission-to-claim p50 / p99 / max (1 instance, {:.0} tasks/s) | {:.1} ms / {:.1} ms / {:.1} ms |",
            self.latency_rate, self.latency_p50_ms, self.latency_p99_ms, self.latency_max_ms
        );
        s
    }
}

/// Run `instances` processes on a fresh swarm holding `tasks` tasks of `task` each (submitted
/// before they start); tasks/s from the first claim to the last end.
async fn throughput(
    base: &ClusterOptions,
    pool: &Pool,
    instances: usize,
    task: Duration,
) -> Result<f64, DrillError> {
    let swarm = format!("bench-{}", Uuid::new_v4().simple());
    let specs: Vec<TaskSpec> = (0..base.tasks)
        .map(|i| TaskSpec::new(format!("t{i}")))
        .collect();
    for chunk in specs.chunks(1000) {
        swarm_postgres::submit(pool, &swarm, chunk)
            .await
            .map_err(db)?;
    }
    let o = ClusterOptions {
        task,
        ..base.clone()
    };
    let mut procs = Vec::new();
    for n in 0..instances {
        procs.push(Process::start(&o.instance(&swarm, n, 0)).await?);
    }
    let started = Instant::now();
    loop {
        let c = swarm_postgres::counts(pool, &swarm).await.map_err(db)?;
        if c.completed == base.tasks {
            break;
        }
        if started.elapsed() > base.duration_limit {
            return Err(DrillError::Setup(format!(
                "the bench did not finish within {:?}: {c:?}",
                base.duration_limit
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in procs {
        p.stop().await;
    }
    let client = pool.get().await.map_err(db)?;
    let secs: f64 = client
        .query_one(
            "SELECT extract(epoch FROM max(t.finished_at) - min(l.at))::float8
             FROM swarm.tasks t JOIN swarm.task_log l ON l.task = t.id AND l.kind = 'claimed'
             WHERE t.swarm = $1",
            &[&swarm],
        )
        .await
        .map_err(db)?
        .get(0);
    Ok(base.tasks as f64 / secs)
}

/// One instance; tasks of 10 ms submitted one at a time at `rate` for `length`; the time from
/// each submission to its claim.
async fn latency(
    base: &ClusterOptions,
    pool: &Pool,
    rate: f64,
    length: Duration,
) -> Result<(f64, f64, f64), DrillError> {
    let swarm = format!("latency-{}", Uuid::new_v4().simple());
    let o = ClusterOptions {
        task: Duration::from_millis(10),
        ..base.clone()
    };
    let p = Process::start(&o.instance(&swarm, 0, 0)).await?;
    let n = (rate * length.as_secs_f64()) as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..n {
        tick.tick().await;
        swarm_postgres::submit(pool, &swarm, &[TaskSpec::new(format!("l{i}"))])
            .await
            .map_err(db)?;
    }
    let started = Instant::now();
    while swarm_postgres::counts(pool, &swarm)
        .await
        .map_err(db)?
        .completed
        < n
    {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(DrillError::Setup("the latency run did not finish".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.stop().await;
    let client = pool.get().await.map_err(db)?;
    let row = client
        .query_one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
             FROM (SELECT extract(epoch FROM min(l.at) - t.created_at)::float8 * 1000 AS ms
                   FROM swarm.tasks t JOIN swarm.task_log l ON l.task = t.id AND l.kind = 'claimed'
                   WHERE t.swarm = $1 GROUP BY t.id, t.created_at) x",
            &[&swarm],
        )
        .await
        .map_err(db)?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// Run the bench on the server `o.url`, with `o`'s agents, in-flight limit and task count.
///
/// # Errors
///
/// [`DrillError::Setup`] if the database or an instance fails, or a run does not finish.
pub async fn bench(o: &ClusterOptions) -> Result<BenchReport, DrillError> {
    let pool = swarm_postgres::pool(&o.url, 8).map_err(db)?;
    swarm_postgres::migrate(&pool).await.map_err(db)?;
    let base = ClusterOptions {
        comm_error_rate: 0.0,
        kill_every: Duration::ZERO,
        pause: None,
        ..o.clone()
    };
    let mut report = BenchReport {
        agents: o.agents,
        tasks: o.tasks,
        ..BenchReport::default()
    };
    for n in 1..=3 {
        let t = throughput(&base, &pool, n, Duration::from_millis(10)).await?;
        eprintln!("bench: 10 ms tasks, {n} instance(s): {t:.0} tasks/s");
        report.throughput.push((n, t));
    }
    report.noop = throughput(&base, &pool, 1, Duration::ZERO).await?;
    eprintln!("bench: no-op tasks, 1 instance: {:.0} tasks/s", report.noop);
    report.latency_rate = 492.0;
    let (p50, p99, max) =
        latency(&base, &pool, report.latency_rate, Duration::from_secs(5)).await?;
    (
        report.latency_p50_ms,
        report.latency_p99_ms,
        report.latency_max_ms,
    ) = (p50, p99, max);
    Ok(report)
}
