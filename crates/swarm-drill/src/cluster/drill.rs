//! The chaos of the multi-instance drill, and its checks in the database.

use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use swarm_integration::TaskSpec;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::children::Process;
use super::db;
use super::{ClusterOptions, ClusterReport};
use crate::DrillError;

/// The tasks `instance` holds now.
async fn held_by(pool: &Pool, instance: Uuid) -> Result<Vec<Uuid>, DrillError> {
    let client = pool.get().await.map_err(db)?;
    let rows = client
        .query(
            "SELECT id FROM swarm.tasks WHERE owner = $1 AND state = 'claimed'",
            &[&instance],
        )
        .await
        .map_err(db)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// How long until none of `held` is `instance`'s or waiting: every one taken over by another
/// instance (or finished). Polls every 10 ms from `from`.
fn watch_handover(
    pool: Pool,
    instance: Uuid,
    held: Vec<Uuid>,
    from: Instant,
) -> JoinHandle<Option<Duration>> {
    tokio::spawn(async move {
        let client = pool.get().await.ok()?;
        loop {
            let left: i64 = client
                .query_one(
                    "SELECT count(*) FROM swarm.tasks
                     WHERE id = ANY($1) AND (owner = $2 OR state = 'pending')",
                    &[&held, &instance],
                )
                .await
                .ok()?
                .get(0);
            if left == 0 {
                return Some(from.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

struct Pause {
    slot: usize,
    length: Duration,
    instance: Uuid,
    held: Vec<Uuid>,
    until: Instant,
    woke_at: Option<f64>,
    handover: JoinHandle<Option<Duration>>,
}

/// Run the drill: start the instances, submit the tasks, kill and pause instances until every
/// task has ended, then check the database.
///
/// # Errors
///
/// [`DrillError::Usage`] for options that cannot work, [`DrillError::Setup`] if the database or
/// an instance process fails.
pub async fn drill(o: &ClusterOptions) -> Result<ClusterReport, DrillError> {
    if o.instances == 0 || o.agents == 0 {
        return Err(DrillError::Usage(
            "--instances and --agents must be at least 1".into(),
        ));
    }
    if o.instances < 2 && (!o.kill_every.is_zero() || o.pause.is_some()) {
        return Err(DrillError::Usage(
            "killing or pausing instances needs at least 2 (--instances 2), or --kill-every 0 --no-pause".into(),
        ));
    }
    let pool = swarm_postgres::pool(&o.url, 8).map_err(db)?;
    swarm_postgres::migrate(&pool).await.map_err(db)?;
    let swarm = format!("drill-{}", Uuid::new_v4().simple());
    let mut generation = 0;
    let mut slots = Vec::new();
    for n in 0..o.instances {
        slots.push(Process::start(&o.instance(&swarm, n, generation)).await?);
    }
    let specs: Vec<TaskSpec> = (0..o.tasks)
        .map(|i| TaskSpec::new(format!("task-{i}")).with_payload(i.to_le_bytes().to_vec()))
        .collect();
    let started = Instant::now();
    for chunk in specs.chunks(1000) {
        swarm_postgres::submit(&pool, &swarm, chunk)
            .await
            .map_err(db)?;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(o.seed);
    let mut next_kill = started + o.kill_every;
    let pause_at = started + Duration::from_secs(1);
    let mut pause: Option<Pause> = None;
    let mut kills = Vec::new();
    let mut restored = 0;
    let mut finished_at = None;
    loop {
        let now = Instant::now();
        let counts = swarm_postgres::counts(&pool, &swarm).await.map_err(db)?;
        let all_done = counts.all_finished() && counts.total() == o.tasks;
        if all_done && finished_at.is_none() {
            finished_at = Some(now);
        }
        let pause_done = o.pause.is_none() || pause.as_ref().is_some_and(|p| p.woke_at.is_some());
        if (all_done && pause_done) || now >= started + o.duration_limit {
            break;
        }
        if let (Some(length), None) = (o.pause, &pause) {
            if now >= pause_at {
                let slot = rng.random_range(0..slots.len());
                let instance = slots[slot].id;
                let held = held_by(&pool, instance).await?;
                slots[slot].signal(true)?;
                let from = Instant::now();
                pause = Some(Pause {
                    slot,
                    length,
                    instance,
                    handover: watch_handover(pool.clone(), instance, held.clone(), from),
                    held,
                    until: from + length,
                    woke_at: None,
                });
            }
        }
        if let Some(p) = pause.as_mut() {
            if p.woke_at.is_none() && now >= p.until {
                let client = pool.get().await.map_err(db)?;
                let at: f64 = client
                    .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
                    .await
                    .map_err(db)?
                    .get(0);
                slots[p.slot].signal(false)?;
                p.woke_at = Some(at);
            }
        }
        if !o.kill_every.is_zero() && now >= next_kill && !all_done {
            next_kill += o.kill_every;
            let paused = pause
                .as_ref()
                .filter(|p| p.woke_at.is_none())
                .map(|p| p.slot);
            let choices: Vec<usize> = (0..slots.len()).filter(|s| Some(*s) != paused).collect();
            let slot = choices[rng.random_range(0..choices.len())];
            let instance = slots[slot].id;
            let held = held_by(&pool, instance).await?;
            slots[slot].kill();
            kills.push(watch_handover(pool.clone(), instance, held, Instant::now()));
            generation += 1;
            slots[slot] = Process::start(&o.instance(&swarm, slot, generation)).await?;
            restored += u64::from(slots[slot].restored);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = finished_at.unwrap_or_else(Instant::now) - started;
    for p in slots {
        p.stop().await;
    }
    let mut report = ClusterReport {
        instances: o.instances,
        tasks: o.tasks,
        elapsed,
        kills: kills.len() as u64,
        kill_handover_limit: Duration::from_secs(2),
        pause_handover_limit: o.lease_ttl + o.renew_every,
        restored,
        ..ClusterReport::default()
    };
    for k in kills {
        let taken = tokio::time::timeout(Duration::from_secs(5), k).await;
        let d = match taken {
            Ok(Ok(Some(d))) => d,
            _ => Duration::MAX,
        };
        report.worst_kill_handover = report.worst_kill_handover.max(d);
    }
    check(&pool, &swarm, &mut report, pause).await?;
    Ok(report)
}

async fn count(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, DrillError> {
    let client = pool.get().await.map_err(db)?;
    let n: i64 = client.query_one(sql, params).await.map_err(db)?.get(0);
    Ok(n as u64)
}

/// What the database shows at the end.
async fn check(
    pool: &Pool,
    swarm: &str,
    report: &mut ClusterReport,
    pause: Option<Pause>,
) -> Result<(), DrillError> {
    let counts = swarm_postgres::counts(pool, swarm).await.map_err(db)?;
    report.completed = counts.completed;
    report.failed = counts.failed;
    report.lost = report.tasks - counts.completed - counts.failed;
    report.completed_twice = count(
        pool,
        "SELECT count(*) FROM (
             SELECT l.task FROM swarm.task_log l JOIN swarm.tasks t ON t.id = l.task
             WHERE t.swarm = $1 AND l.kind IN ('completed', 'failed')
             GROUP BY l.task HAVING count(*) > 1) twice",
        &[&swarm],
    )
    .await?;
    report.refused = count(
        pool,
        "SELECT count(*) FROM swarm.fence_rejections WHERE swarm = $1",
        &[&swarm],
    )
    .await?;
    report.recovery_rounds = count(
        pool,
        "SELECT count(*) FROM swarm.recovery_log r JOIN swarm.tasks t ON t.id = r.task WHERE t.swarm = $1",
        &[&swarm],
    )
    .await?;
    report.rounds_out_of_order = count(
        pool,
        "SELECT count(*) FROM (
             SELECT r.epoch < lag(r.epoch) OVER (PARTITION BY r.task ORDER BY r.at) AS back
             FROM swarm.recovery_log r JOIN swarm.tasks t ON t.id = r.task WHERE t.swarm = $1) x
         WHERE back",
        &[&swarm],
    )
    .await?;
    if let Some(p) = pause {
        report.paused_for = Some(p.length);
        report.paused_held = p.held.len() as u64;
        report.pause_handover = tokio::time::timeout(Duration::from_secs(5), p.handover)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        report.paused_refused = count(
            pool,
            "SELECT count(*) FROM swarm.fence_rejections WHERE swarm = $1 AND instance = $2",
            &[&swarm, &p.instance],
        )
        .await?;
        let woke = p.woke_at.unwrap_or(f64::MAX);
        report.paused_applied_late = count(
            pool,
            "SELECT count(*) FROM swarm.task_log
             WHERE instance = $1 AND kind IN ('completed', 'failed') AND task = ANY($2)
               AND extract(epoch FROM at)::float8 > $3",
            &[&p.instance, &p.held, &woke],
        )
        .await?;
    }
    Ok(())
}
