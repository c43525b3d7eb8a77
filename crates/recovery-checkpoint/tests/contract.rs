//! The store contract (`recovery_checkpoint::contract`) run against the file store and the
//! memory store: random operation sequences against a model, and the damage sweep.

use async_trait::async_trait;
use proptest::prelude::*;
use recovery_checkpoint::contract::{self, RawBytes};
use recovery_checkpoint::{CheckpointInfo, FileStore, MemoryStore};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #[test]
    fn prop_the_file_store_keeps_the_contract(ops in contract::ops()) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let outcome = block_on(contract::check_ops(&store, &ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }

    #[test]
    fn prop_the_memory_store_keeps_the_contract(ops in contract::ops()) {
        let store = MemoryStore::new();
        let outcome = block_on(contract::check_ops(&store, &ops));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

struct Files<'a>(&'a FileStore);

#[async_trait]
impl RawBytes for Files<'_> {
    async fn read(&self, info: CheckpointInfo) -> Vec<u8> {
        std::fs::read(self.0.path_of(info)).unwrap()
    }

    async fn write(&self, info: CheckpointInfo, bytes: &[u8]) {
        std::fs::write(self.0.path_of(info), bytes).unwrap();
    }
}

#[tokio::test]
async fn the_file_store_passes_over_every_damage_of_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let cases = contract::damage_sweep(&store, &Files(&store), 512, 1)
        .await
        .unwrap();
    assert!(cases > 9 * 512, "{cases} cases");
}
