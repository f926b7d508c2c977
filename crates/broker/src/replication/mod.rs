//! Follower replication, Kafka's way: a follower pulls from its leader with the Fetch API
//! (`replica_id` set to its node id), one fetcher per leader broker carrying every partition
//! this node follows there. Before fetching in a new leader epoch a follower asks the
//! leader where its own latest epoch ends (OffsetsForLeaderEpoch) and truncates anything
//! beyond. The leader side lives in [`crate::partition`]: follower progress, the high
//! watermark and the ISR changes it asks the controller for.
//!
//! The Fetch protocol, not a separate RPC, carries replication: it already batches many
//! partitions per request, parks until data arrives, and is served zero-copy from the
//! segment mapping, so followers cost the leader what a consumer costs.

mod fetcher;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::partition::Partition;

/// How followers fetch.
#[derive(Debug, Clone)]
pub(crate) struct FetcherConfig {
    /// This node's id, sent as the fetch's `replica_id`.
    pub(crate) node_id: i32,
    /// `replica.fetch.wait.max.ms`: how long a fetch parks at the leader.
    pub(crate) max_wait: Duration,
    /// `replica.fetch.max.bytes`: per partition.
    pub(crate) partition_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: per request.
    pub(crate) response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: pause after an error.
    pub(crate) backoff: Duration,
    /// How to reach the leaders' inter-broker listener (TLS when it is SSL).
    pub(crate) connector: crate::inter_broker::InterBrokerClient,
}

/// The partitions one fetcher pulls from its leader.
type FollowedSet = Vec<Arc<Partition>>;

#[derive(Debug)]
struct Fetcher {
    addr: String,
    partitions: watch::Sender<FollowedSet>,
    task: JoinHandle<()>,
}

/// One fetcher task per leader broker, kept in line with the partitions this node follows.
#[derive(Debug)]
pub(crate) struct ReplicaFetchers {
    config: FetcherConfig,
    runtime: Mutex<Option<Handle>>,
    /// The latest wanted assignment, kept until a runtime is there to start fetchers.
    wanted: Mutex<HashMap<i32, (String, FollowedSet)>>,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl ReplicaFetchers {
    pub(crate) fn new(config: FetcherConfig) -> Self {
        Self {
            config,
            runtime: Mutex::new(None),
            wanted: Mutex::new(HashMap::new()),
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Starts fetching on `runtime` (until then [`ReplicaFetchers::update`] only records).
    pub(crate) fn start(&self, runtime: Handle) {
        *self.runtime.lock() = Some(runtime);
        let wanted = self.wanted.lock().clone();
        self.update(wanted);
    }

    /// Sets what to follow: by leader id, its `host:port` and the partitions led there.
    /// Fetchers of leaders no longer wanted stop; a changed address restarts its fetcher.
    pub(crate) fn update(&self, wanted: HashMap<i32, (String, FollowedSet)>) {
        *self.wanted.lock() = wanted.clone();
        let Some(runtime) = self.runtime.lock().clone() else {
            return;
        };
        let mut fetchers = self.fetchers.lock();
        fetchers.retain(|leader, fetcher| {
            let keep = wanted
                .get(leader)
                .is_some_and(|(addr, _)| *addr == fetcher.addr);
            if !keep {
                fetcher.task.abort();
            }
            keep
        });
        for (leader, (addr, partitions)) in wanted {
            if let Some(fetcher) = fetchers.get(&leader) {
                fetcher.partitions.send_if_modified(|current| {
                    let same = current.len() == partitions.len()
                        && current
                            .iter()
                            .zip(&partitions)
                            .all(|(a, b)| Arc::ptr_eq(a, b));
                    if !same {
                        *current = partitions;
                    }
                    !same
                });
                continue;
            }
            let (tx, rx) = watch::channel(partitions);
            let task = runtime.spawn(fetcher::run(self.config.clone(), leader, addr.clone(), rx));
            fetchers.insert(
                leader,
                Fetcher {
                    addr,
                    partitions: tx,
                    task,
                },
            );
        }
    }

    /// Stops every fetcher.
    pub(crate) fn stop(&self) {
        *self.runtime.lock() = None;
        for (_, fetcher) in self.fetchers.lock().drain() {
            fetcher.task.abort();
        }
    }
}
