//! `PgCheckpointStore` keeps the contract every checkpoint store keeps (recovery-checkpoint's
//! `contract`): the same random operation sequences against the model as the file store, and
//! the same damage sweep, against a real server.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use proptest::prelude::*;
use recovery_checkpoint::contract::{self, RawBytes};
use recovery_checkpoint::{CheckpointError, CheckpointInfo, CheckpointStore, Codec};
use swarm_postgres::PgCheckpointStore;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn prop_the_postgres_store_keeps_the_contract(ops in contract::ops()) {
        let rt = runtime();
        let Some((_, pool)) = rt.block_on(common::pool(2)) else { return Ok(()) };
        let store = PgCheckpointStore::new(pool, common::unique("contract"));
        let outcome = rt.block_on(contract::check_ops(&store, &ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

struct Rows<'a>(&'a PgCheckpointStore);

#[async_trait]
impl RawBytes for Rows<'_> {
    async fn read(&self, info: CheckpointInfo) -> Vec<u8> {
        self.0.raw(info).await.unwrap()
    }

    async fn write(&self, info: CheckpointInfo, bytes: &[u8]) {
        self.0.overwrite_raw(info, bytes).await.unwrap();
    }
}

#[tokio::test]
async fn the_postgres_store_passes_over_every_damage_of_the_sweep() {
    let Some((_, pool)) = common::pool(4).await else {
        return;
    };
    let store = PgCheckpointStore::new(pool, common::unique("damage"));
    // Every cut and every bit flip of a checkpoint with a 64-byte payload, header included:
    // each damage is found and passed over for the older intact checkpoint.
    let cases = contract::damage_sweep(&store, &Rows(&store), 64, 1)
        .await
        .unwrap();
    assert!(cases > 9 * 64, "{cases} cases");
}

#[tokio::test]
async fn several_writers_to_one_store_get_distinct_increasing_sequences() {
    let Some((_, pool)) = common::pool(8).await else {
        return;
    };
    let store = Arc::new(PgCheckpointStore::new(pool, common::unique("writers")));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8u8 {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10u8 {
                seqs.push(
                    store
                        .put(Codec::CURRENT, vec![w, i])
                        .await
                        .unwrap()
                        .sequence,
                );
            }
            seqs
        });
    }
    let mut all = Vec::new();
    while let Some(seqs) = writers.join_next().await {
        let seqs = seqs.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one writer's sequences grow: {seqs:?}"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=80).collect::<Vec<u64>>(),
        "80 puts, 80 distinct sequences"
    );
    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 80);
    assert_eq!(list[0].sequence, 80, "newest first");
}

#[tokio::test]
async fn a_row_moved_under_another_id_is_refused_as_malformed() {
    let Some((_, pool)) = common::pool(2).await else {
        return;
    };
    let store = PgCheckpointStore::new(pool, common::unique("moved"));
    let a = store.put(Codec::CURRENT, b"a".to_vec()).await.unwrap();
    let b = store.put(Codec::CURRENT, b"b".to_vec()).await.unwrap();
    // b's row now holds a's bytes, whose header names a.
    let bytes = store.raw(a).await.unwrap();
    store.overwrite_raw(b, &bytes).await.unwrap();
    match store.get(b.id).await {
        Err(CheckpointError::Malformed { reason }) => {
            assert!(reason.contains("holds checkpoint"), "{reason}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(store.get(a.id).await.unwrap().payload, b"a");
}

#[tokio::test]
async fn a_server_that_is_gone_gives_a_backend_error_naming_the_operation() {
    // A port nothing listens on: the pool's connect fails; the error says which store and step.
    let pool = swarm_postgres::pool("postgres://postgres@127.0.0.1:1/postgres", 1).unwrap();
    let store = PgCheckpointStore::new(pool, "nowhere");
    let e = store.put(Codec::CURRENT, vec![1]).await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, CheckpointError::Backend { op: "put", .. }),
        "{text}"
    );
    assert!(text.contains("postgres"), "{text}");
}
