//! Two instances racing for the same failures, round after round: leases are expired behind
//! their holders' backs all along (as a paused or partitioned holder's would), so every
//! failure's recovery changes hands many times. The shared history must still show one owner
//! at a time for each task, carried on (never from zero), and exactly one applied completion.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Behaviour, coordinator, join, log_counts, wait_for};
use swarm_integration::TaskSpec;
use swarm_postgres::submit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_for_the_same_failures_never_both_apply_a_recovery() {
    let Some((url, pool)) = common::pool(24).await else {
        return;
    };
    let swarm = common::unique("racing");
    // Every task's first 4 runs fail, counted over both instances: each needs recovery rounds,
    // and whoever holds it carries on from the rounds the other made.
    let runs = Arc::new(Mutex::new(HashMap::new()));
    let flaky = || Behaviour::Flaky {
        runs: Arc::clone(&runs),
        failures: 4,
        run: Duration::from_millis(15),
    };
    let a = join(&url, &pool, &swarm, "a", coordinator(flaky(), 4, "cpu")).await;
    let b = join(&url, &pool, &swarm, "b", coordinator(flaky(), 4, "cpu")).await;
    let n = 60;
    let specs: Vec<TaskSpec> = (0..n)
        .map(|i| {
            TaskSpec::new(format!("flaky-{i}"))
                .requiring("cpu")
                .with_payload(vec![i as u8])
        })
        .collect();
    submit(&pool, &swarm, &specs).await.unwrap();

    // The chaos: every 10 ms, one held lease expires behind its holder's back.
    let chaos = {
        let (pool, swarm) = (pool.clone(), swarm.clone());
        tokio::spawn(async move {
            let client = pool.get().await.unwrap();
            let mut expired = 0u64;
            loop {
                expired += client
                    .execute(
                        "UPDATE swarm.tasks SET lease_until = clock_timestamp() - interval '1 ms'
                         WHERE id = (SELECT id FROM swarm.tasks WHERE swarm = $1 AND state = 'claimed'
                                     ORDER BY random() LIMIT 1)",
                        &[&swarm],
                    )
                    .await
                    .unwrap();
                if expired >= 400 {
                    return expired;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let counts = wait_for(&pool, &swarm, Duration::from_secs(120), |c| {
        c.all_finished()
    })
    .await;
    chaos.abort();
    assert_eq!(counts.total(), n as u64);
    assert_eq!(
        counts.completed, n as u64,
        "every task got through its 4 failures: {counts:?}"
    );

    for (task, completed, failed, _) in log_counts(&pool, &swarm).await {
        assert_eq!(
            (completed, failed),
            (1, 0),
            "task {task}: one applied completion"
        );
    }

    // The recovery history, in the order it was written.
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT r.task, r.epoch, r.instance, r.retries, coalesce(r.retries_after, r.retries)
             FROM swarm.recovery_log r JOIN swarm.tasks t ON t.id = r.task
             WHERE t.swarm = $1 ORDER BY r.task, r.at",
            &[&swarm],
        )
        .await
        .unwrap();
    let mut per_task: HashMap<uuid::Uuid, Vec<(i64, uuid::Uuid, i32, i32)>> = HashMap::new();
    for r in &rows {
        per_task
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3), r.get(4)));
    }
    let (mut handovers, mut carried) = (0, 0);
    for (task, rounds) in &per_task {
        for w in rounds.windows(2) {
            let ((e0, i0, _, after0), (e1, i1, r1, _)) = (w[0], w[1]);
            // One owner at a time: once a newer epoch wrote, no older one writes again.
            assert!(
                e0 <= e1,
                "task {task}: epoch {e1} wrote before epoch {e0}: {rounds:?}"
            );
            assert!(
                e0 < e1 || i0 == i1,
                "task {task}: two instances in one epoch"
            );
            // Carried on: a round starts with at least the re-runs the rounds before it ended
            // with, whoever made them.
            assert!(
                after0 <= r1,
                "task {task}: retries went from {after0} back to {r1}: {rounds:?}"
            );
            if e0 < e1 {
                handovers += 1;
                if after0 > 0 {
                    carried += 1;
                }
            }
        }
    }
    let (sa, sb) = (a.stats(), b.stats());
    let rejections = sa.fence_rejections + sb.fence_rejections;
    eprintln!(
        "{} recovery rounds over {} tasks, {handovers} hand-overs mid-recovery ({carried} after re-runs), \
         {rejections} stale writes refused",
        rows.len(),
        per_task.len()
    );
    // A stale holder's failed run counts towards the 4 but its round is refused: fewer than 4
    // rounds per task are written, at least one.
    assert_eq!(per_task.len(), n, "every task needed recovery");
    assert!(handovers > 0, "the chaos moved some recoveries mid-way");
    assert!(
        rejections > 0,
        "some stale holder wrote after losing its lease"
    );
    let logged: i64 = client
        .query_one(
            "SELECT count(*) FROM swarm.fence_rejections WHERE swarm = $1",
            &[&swarm],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged as u64, rejections, "every refused write is logged");
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}
