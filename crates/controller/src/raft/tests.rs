//! openraft's storage conformance suite against our log and state machine, and the
//! log file's own crash behaviour.

use std::io::Write;

use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::{Entry, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().expect("temp dir");
        let log = LogStore::open(dir.path()).expect("open log");
        let sm = StateMachine::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_conformance_suite() {
    let run = Suite::test_all(Builder);
    tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("suite finished in time")
        .expect("suite passed");
}

fn blank(term: u64, index: u64) -> Entry {
    openraft::testing::blank_ent::<TypeConfig>(term, 1, index)
}

async fn append(log: &mut LogStore, entries: Vec<Entry>) {
    // The record is written before `append` returns; the flush only makes it durable.
    log.append(entries, IOFlushed::noop())
        .await
        .expect("append");
}

#[tokio::test]
async fn reopening_gives_back_entries_truncations_and_purges() {
    let dir = TempDir::new().unwrap();
    {
        let mut log = LogStore::open(dir.path()).unwrap();
        append(&mut log, (1..=10).map(|i| blank(1, i)).collect()).await;
        log.truncate_after(Some(blank(1, 7).log_id)).await.unwrap();
        append(&mut log, (8..=9).map(|i| blank(2, i)).collect()).await;
        log.purge(blank(1, 3).log_id).await.unwrap();
    }
    let mut log = LogStore::open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(blank(1, 3).log_id));
    assert_eq!(state.last_log_id, Some(blank(2, 9).log_id));
    let entries = log.try_get_log_entries(0..100).await.unwrap();
    let ids: Vec<_> = entries.iter().map(|e| e.log_id).collect();
    let expected: Vec<_> = (4..=7)
        .map(|i| blank(1, i).log_id)
        .chain((8..=9).map(|i| blank(2, i).log_id))
        .collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_log_stays_appendable() {
    let dir = TempDir::new().unwrap();
    {
        let mut log = LogStore::open(dir.path()).unwrap();
        append(&mut log, (1..=5).map(|i| blank(1, i)).collect()).await;
    }
    // A crash in the middle of the next record: half a header and some bytes.
    let path = dir.path().join("raft.log");
    let len = std::fs::metadata(&path).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&[0, 0, 1, 0, 9, 9]).unwrap();
    drop(file);
    let mut log = LogStore::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    append(&mut log, vec![blank(1, 6)]).await;
    drop(log);
    let mut log = LogStore::open(dir.path()).unwrap();
    assert_eq!(log.try_get_log_entries(0..100).await.unwrap().len(), 6);
}
