//! Several instances in one test process, each with its own coordinator and session, sharing a
//! swarm on a real server: work is shared and completed once, a killed instance's work moves
//! at once, an expired lease is fenced, leaving gives work back, a restarted instance restores
//! its agents, and the schema migrates once when instances start together.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Behaviour, coordinator, join, log_counts, wait_for};
use recovery_checkpoint::CheckpointRecoveryStrategy;
use recovery_manager::RecoveryManager;
use swarm_integration::{AgentSpec, CoordinatorOptions, SwarmConfig, SwarmCoordinator, TaskSpec};
use swarm_postgres::{
    ClusterConfig, PgCheckpointStore, SharedOutcome, instance_checkpoint, outcome, purge, submit,
};

fn specs(n: usize, cap: &str) -> Vec<TaskSpec> {
    (0..n)
        .map(|i| {
            TaskSpec::new(format!("task-{i}"))
                .requiring(cap)
                .with_payload(format!("payload {i}").into_bytes())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_submitted_from_anywhere_complete_once_on_some_instance() {
    let Some((url, pool)) = common::pool(16).await else {
        return;
    };
    let swarm = common::unique("shared");
    let a = join(
        &url,
        &pool,
        &swarm,
        "a",
        coordinator(Behaviour::Echo, 4, "cpu"),
    )
    .await;
    let b = join(
        &url,
        &pool,
        &swarm,
        "b",
        coordinator(Behaviour::Echo, 4, "cpu"),
    )
    .await;
    // Submitted by a process that is no instance, in batches.
    let mut ids = Vec::new();
    for chunk in specs(400, "cpu").chunks(50) {
        ids.extend(submit(&pool, &swarm, chunk).await.unwrap());
    }
    let counts = wait_for(&pool, &swarm, Duration::from_secs(60), |c| {
        c.completed == 400
    })
    .await;
    assert_eq!(
        counts.failed + counts.pending + counts.claimed,
        0,
        "{counts:?}"
    );
    for (task, completed, failed, _) in log_counts(&pool, &swarm).await {
        assert_eq!(
            (completed, failed),
            (1, 0),
            "task {task}: one applied completion"
        );
    }
    for (i, id) in ids.iter().enumerate().step_by(37) {
        let got = outcome(&pool, *id).await.unwrap();
        assert_eq!(
            got,
            Some(SharedOutcome::Completed(
                format!("payload {i}").into_bytes()
            ))
        );
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.completed + sb.completed, 400, "{sa:?} {sb:?}");
    assert_eq!(sa.fence_rejections + sb.fence_rejections, 0);
    // Purging keeps what ended recently, and deletes the rest with its log.
    assert_eq!(
        purge(&pool, &swarm, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(purge(&pool, &swarm, Duration::ZERO).await.unwrap(), 400);
    assert_eq!(outcome(&pool, ids[0]).await.unwrap(), None);
    assert!(log_counts(&pool, &swarm).await.is_empty());
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_nobody_can_run_waits_until_an_instance_that_can_joins() {
    let Some((url, pool)) = common::pool(8).await else {
        return;
    };
    let swarm = common::unique("capability");
    let cpu = join(
        &url,
        &pool,
        &swarm,
        "cpu",
        coordinator(Behaviour::Echo, 2, "cpu"),
    )
    .await;
    let gpu_task = submit(&pool, &swarm, &specs(1, "gpu")).await.unwrap()[0];
    // Submitted after it: the cpu instance claims in submission order, so it has passed the
    // gpu task over once this one is done.
    let cpu_task = submit(&pool, &swarm, &specs(1, "cpu")).await.unwrap()[0];
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.completed == 1).await;
    assert!(matches!(
        outcome(&pool, cpu_task).await.unwrap(),
        Some(SharedOutcome::Completed(_))
    ));
    assert_eq!(
        outcome(&pool, gpu_task).await.unwrap(),
        Some(SharedOutcome::Pending)
    );
    assert_eq!(cpu.stats().claimed, 1, "never claimed what it cannot run");

    let gpu = join(
        &url,
        &pool,
        &swarm,
        "gpu",
        coordinator(Behaviour::Echo, 1, "gpu"),
    )
    .await;
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.completed == 2).await;
    assert_eq!(gpu.stats().completed, 1);
    cpu.leave().await.unwrap();
    gpu.leave().await.unwrap();
}

/// The session of an instance ends as a killed process's would (its backend is terminated):
/// its advisory lock frees, the other instance's reaper takes its tasks within a reaper
/// period, and the dead instance stops acting on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_work_moves_within_a_second() {
    let Some((url, pool)) = common::pool(16).await else {
        return;
    };
    let swarm = common::unique("killed");
    let dead = join(
        &url,
        &pool,
        &swarm,
        "dead",
        coordinator(Behaviour::Hold, 4, "cpu"),
    )
    .await;
    submit(&pool, &swarm, &specs(8, "cpu")).await.unwrap();
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.claimed == 8).await;
    let alive = join(
        &url,
        &pool,
        &swarm,
        "alive",
        coordinator(Behaviour::Echo, 4, "cpu"),
    )
    .await;

    let client = pool.get().await.unwrap();
    let name = format!("swarm-postgres instance {}", dead.id());
    let killed = client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(killed, 1, "the instance's session was found");
    let at = Instant::now();
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.completed == 8).await;
    let handover = at.elapsed();
    assert!(
        handover < Duration::from_secs(2),
        "handed over in {handover:?}"
    );
    for _ in 0..100 {
        if !dead.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!dead.is_running(), "an instance whose session ended stops");
    assert_eq!(dead.stats().leases_lost, 8);
    assert_eq!(dead.stats().completed, 0);
    assert_eq!(alive.stats().completed, 8);
    for (task, completed, _, claims) in log_counts(&pool, &swarm).await {
        assert_eq!((completed, claims), (1, 2), "task {task}");
    }
    alive.leave().await.unwrap();
}

/// A lease that expires behind its holder's back (as a paused process's does) is taken over;
/// the holder's next write about it, the renewal, is refused by the fence, counted and logged,
/// and its run is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_and_its_holder_fenced() {
    let Some((url, pool)) = common::pool(16).await else {
        return;
    };
    let swarm = common::unique("fenced");
    // It holds at most 4: it does not claim its own tasks back once the lease is gone.
    let config = ClusterConfig {
        max_in_flight: 4,
        ..common::test_config(&swarm, "stale")
    };
    let stale =
        common::join_with(&url, &pool, coordinator(Behaviour::Hold, 4, "cpu"), config).await;
    submit(&pool, &swarm, &specs(4, "cpu")).await.unwrap();
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.claimed == 4).await;
    let client = pool.get().await.unwrap();
    client
        .execute(
            "UPDATE swarm.tasks SET lease_until = clock_timestamp() - interval '1 ms' WHERE swarm = $1",
            &[&swarm],
        )
        .await
        .unwrap();
    let fresh = join(
        &url,
        &pool,
        &swarm,
        "fresh",
        coordinator(Behaviour::Echo, 4, "cpu"),
    )
    .await;
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.completed == 4).await;
    // The stale holder renews within 500 ms and learns it lost them; a refusal is counted
    // once it is logged.
    for _ in 0..200 {
        let s = stale.stats();
        if s.leases_lost == 4 && s.fence_rejections == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = stale.stats();
    assert_eq!(
        (s.leases_lost, s.fence_rejections, s.completed),
        (4, 4, 0),
        "{s:?}"
    );
    let logged: i64 = client
        .query_one(
            "SELECT count(*) FROM swarm.fence_rejections WHERE swarm = $1 AND instance = $2",
            &[&swarm, &stale.id()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged, 4);
    for (task, completed, _, _) in log_counts(&pool, &swarm).await {
        assert_eq!(completed, 1, "task {task}");
    }
    assert_eq!(
        stale.coordinator().parallelism().0,
        0,
        "the stale holder's runs were stopped"
    );
    stale.leave().await.unwrap();
    fresh.leave().await.unwrap();
}

/// What earlier holders did is in the shared row (as a holder that died mid-recovery leaves
/// it): a new holder counts their re-runs against the same limit and names their rounds when
/// it gives up; it does not start from zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_holder_carries_on_from_the_shared_recovery_history() {
    let Some((url, pool)) = common::pool(8).await else {
        return;
    };
    let swarm = common::unique("carry");
    let ids = submit(&pool, &swarm, &specs(2, "cpu")).await.unwrap();
    let client = pool.get().await.unwrap();
    // task-0: 3 re-runs made by a dead holder; task-1: all 10 of the limit used up.
    for (id, retries) in [(ids[0], 3), (ids[1], 10)] {
        client
            .execute(
                "UPDATE swarm.tasks SET retries = $2, tried = '{\"CommunicationError -> retried on host-x\"}' WHERE id = $1",
                &[&id.as_uuid(), &retries],
            )
            .await
            .unwrap();
    }
    let runs = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let flaky = Behaviour::Flaky {
        runs,
        failures: 1,
        run: Duration::from_millis(1),
    };
    let a = join(&url, &pool, &swarm, "a", coordinator(flaky, 2, "cpu")).await;
    wait_for(&pool, &swarm, Duration::from_secs(20), |c| c.all_finished()).await;

    let round = |id: uuid::Uuid| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT retries, retries_after FROM swarm.recovery_log WHERE task = $1",
                    &[&id],
                )
                .await
                .unwrap()
        }
    };
    let r = round(ids[0].as_uuid()).await;
    assert_eq!(
        r.get::<_, i32>(0),
        3,
        "the round started from the 3 re-runs made before"
    );
    assert_eq!(r.get::<_, Option<i32>>(1), Some(4), "and made one more");
    assert!(matches!(
        outcome(&pool, ids[0]).await.unwrap(),
        Some(SharedOutcome::Completed(_))
    ));
    match outcome(&pool, ids[1]).await.unwrap() {
        Some(SharedOutcome::Failed(reason)) => {
            assert!(
                reason.contains("retried on host-x"),
                "the earlier rounds are named: {reason}"
            );
            assert!(reason.contains("10 of 10"), "{reason}");
        }
        other => panic!("a task with no re-run left fails at once, got {other:?}"),
    }
    a.leave().await.unwrap();
}

/// An instance that claims a task again while its stale run of the older epoch is still
/// going (its lease expired behind its back, its own reaper freed the task): the stale run is
/// stopped and writes nothing, and the new claim keeps its lease and completes, with no
/// refused write and no third claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_claimed_again_by_its_stale_holder_completes_under_the_new_epoch() {
    let Some((url, pool)) = common::pool(8).await else {
        return;
    };
    let swarm = common::unique("reclaim");
    let lengths = Behaviour::Lengths {
        runs: Arc::new(std::sync::Mutex::new(std::collections::HashMap::new())),
        lengths: vec![
            Duration::from_millis(400),
            Duration::from_millis(800),
            Duration::ZERO,
        ],
    };
    let a = join(&url, &pool, &swarm, "a", coordinator(lengths, 2, "cpu")).await;
    let id = submit(&pool, &swarm, &specs(1, "cpu")).await.unwrap()[0];
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.claimed == 1).await;
    let client = pool.get().await.unwrap();
    client
        .execute(
            "UPDATE swarm.tasks SET lease_until = clock_timestamp() - interval '1 ms' WHERE id = $1",
            &[&id.as_uuid()],
        )
        .await
        .unwrap();
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.completed == 1).await;
    let s = a.stats();
    assert_eq!(
        (s.claimed, s.completed, s.fence_rejections),
        (2, 1, 0),
        "{s:?}"
    );
    let epoch: i64 = client
        .query_one(
            "SELECT epoch FROM swarm.task_log WHERE task = $1 AND kind = 'completed'",
            &[&id.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(epoch, 2, "completed under the second claim");
    a.leave().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_gives_held_tasks_back() {
    let Some((url, pool)) = common::pool(8).await else {
        return;
    };
    let swarm = common::unique("leave");
    let a = join(
        &url,
        &pool,
        &swarm,
        "a",
        coordinator(Behaviour::Hold, 2, "cpu"),
    )
    .await;
    submit(&pool, &swarm, &specs(5, "cpu")).await.unwrap();
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.claimed == 5).await;
    assert_eq!(a.leave().await.unwrap(), 5);
    let c = swarm_postgres::counts(&pool, &swarm).await.unwrap();
    assert_eq!((c.pending, c.claimed), (5, 0));
    let b = join(
        &url,
        &pool,
        &swarm,
        "b",
        coordinator(Behaviour::Echo, 2, "cpu"),
    )
    .await;
    wait_for(&pool, &swarm, Duration::from_secs(10), |c| c.completed == 5).await;
    b.leave().await.unwrap();
}

/// An instance's coordinator checkpoints to its store in the shared database; a new process
/// under the same name brings its agents and their state back from there, without the old
/// process's tasks (the shared table has them).
#[tokio::test]
async fn a_restarted_instance_restores_its_agents_from_the_shared_store() {
    let Some((_, pool)) = common::pool(4).await else {
        return;
    };
    let config = ClusterConfig::new(common::unique("restart"), "host-a");
    let store = Arc::new(PgCheckpointStore::for_instance(pool.clone(), &config));
    let manager = || {
        let strategy = CheckpointRecoveryStrategy::with_store(store.clone(), 5).unwrap();
        Arc::new(
            RecoveryManager::<SwarmCoordinator>::builder()
                .default_strategies()
                .checkpoint(strategy)
                .without_sampler()
                .build()
                .unwrap(),
        )
    };
    assert!(
        instance_checkpoint(&store).await.unwrap().is_none(),
        "nothing stored yet"
    );
    let before = SwarmCoordinator::with_manager(
        SwarmConfig::default(),
        Arc::new(Behaviour::Echo),
        manager(),
    )
    .unwrap();
    for name in ["render-1", "render-2", "render-3"] {
        before
            .register_agent(AgentSpec::new(name, ["cpu"]))
            .unwrap();
    }
    before.set_metadata("deploy", "42");
    before.submit_task(TaskSpec::new("local")).unwrap();
    before.create_checkpoint().await.unwrap();
    let mut names_before: Vec<String> = before.agents().into_iter().map(|a| a.name).collect();
    names_before.sort();
    drop(before);

    let state = instance_checkpoint(&store)
        .await
        .unwrap()
        .expect("one checkpoint");
    assert!(state.tasks.is_empty(), "the shared table has the tasks");
    let after = SwarmCoordinator::from_checkpoint(
        state,
        Arc::new(Behaviour::Echo),
        manager(),
        CoordinatorOptions::default(),
    )
    .unwrap();
    let mut names_after: Vec<String> = after.agents().into_iter().map(|a| a.name).collect();
    names_after.sort();
    assert_eq!(names_after, names_before);
    assert_eq!(
        after.snapshot().metadata.get("deploy").map(String::as_str),
        Some("42")
    );
    assert!(after.audit().is_empty(), "{:?}", after.audit());
}

/// Four instances migrating a fresh database at once: one applies the schema, the others
/// find it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_a_fresh_database_once() {
    let Some(url) = common::server_url() else {
        return;
    };
    let admin = swarm_postgres::pool(&url, 1).unwrap();
    let db = common::unique("migrate").replace('-', "_");
    let client = admin.get().await.unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.dbname(&db);
    let fresh_url = format!(
        "postgres://{}@{}:{}/{db}",
        config.get_user().unwrap_or("postgres"),
        match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        },
        config.get_ports().first().copied().unwrap_or(5432),
    );
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let pool = swarm_postgres::pool(&fresh_url, 1).unwrap();
        starts.spawn(async move { swarm_postgres::migrate(&pool).await.unwrap() });
    }
    let mut applied = Vec::new();
    while let Some(a) = starts.join_next().await {
        applied.push(a.unwrap());
    }
    applied.sort();
    assert_eq!(
        applied,
        vec![vec![], vec![], vec![], vec![1]],
        "one start applied version 1"
    );
    client
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
}
