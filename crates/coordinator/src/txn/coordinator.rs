//! [`TxnCoordinator`]: the transactional ids of the `__transaction_state` partitions this
//! node leads, and every transaction request on them: decide ([`super::requests`]), append
//! the new state, apply it once replicated, and after an EndTxn have the markers written
//! ([`TxnMarkers`]) before the transaction is logged complete.
//!
//! A transition's record is appended with no lock held; the id's pending state keeps a
//! second transition out meanwhile (CONCURRENT_TRANSACTIONS), so the state in memory is
//! always what the log says, or the transition about to be.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::records::{self, StoredTransaction, TxnPartitions};
use super::requests::{self, AddStep, EndStep, InitStep};
use super::state::{Transition, TxnMetadata, TxnState};
use super::TRANSACTION_STATE_TOPIC;
use crate::error::{CoordinatorError, LogError};
use crate::log::CoordinatorLog;
use crate::ownership::{CoordinatorPartitions, CoordinatorState, Load};

/// How long a `__transaction_state` write waits for replication.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(5000);

/// Writes a transaction's COMMIT or ABORT markers (Kafka's WriteTxnMarkers to each
/// partition's leader), implemented by the broker.
pub trait TxnMarkers: Send + Sync {
    /// Writes the marker of `producer_id`/`epoch` into every partition of `partitions`,
    /// retrying while leaders move; resolves once every partition has it (a partition that
    /// no longer exists counts as done, as in Kafka). `coordinator_epoch` is the leader epoch
    /// of the transaction's `__transaction_state` partition when this coordinator loaded it:
    /// a partition leader that has seen a marker of the producer with a newer one refuses
    /// it (TRANSACTION_COORDINATOR_FENCED), which ends the write with that error.
    fn write(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        partitions: TxnPartitions,
    ) -> Pin<Box<dyn Future<Output = Result<(), LogError>> + Send>>;
}

/// Broker settings of the transaction coordinator (Kafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: how long an idle id is kept.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

/// The transactional ids replayed from and written to the led partitions.
#[derive(Debug, Default)]
pub struct Transactions {
    ids: Mutex<HashMap<String, TxnMetadata>>,
    /// Ids whose markers are being written now.
    completing: Mutex<HashSet<String>>,
}

impl CoordinatorState for Transactions {
    fn replay(&self, key: &Bytes, value: Option<&Bytes>) {
        let Some(id) = records::decode_key(key) else {
            return;
        };
        let mut ids = self.ids.lock();
        match value.map(|v| records::decode_value(v)) {
            None => {
                ids.remove(&id);
            }
            Some(Some(stored)) => {
                ids.insert(id.clone(), TxnMetadata::loaded(id, stored));
            }
            Some(None) => {
                tracing::warn!(transactional_id = %id, "unreadable __transaction_state value")
            }
        }
    }

    fn unload(&self, moved: &dyn Fn(&str) -> bool) {
        self.ids.lock().retain(|id, _| !moved(id));
        self.completing.lock().retain(|id| !moved(id));
    }
}

/// A transaction as ListTransactions and DescribeTransactions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub state: TxnState,
    pub stored: StoredTransaction,
}

/// The transaction coordinator of one node.
pub struct TxnCoordinator {
    partitions: CoordinatorPartitions<Transactions>,
    config: TxnConfig,
    markers: Arc<dyn TxnMarkers>,
    /// The finalized `transaction.version`: the coordinator's own aborts (a fence by
    /// InitProducerId, a timeout) follow it, as Kafka's do.
    transaction_version: std::sync::atomic::AtomicI16,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnCoordinator")
            .field("partitions", &self.partitions)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn not_served(e: CoordinatorError) -> ResponseError {
    e.error()
}

impl TxnCoordinator {
    /// A coordinator leading no partition yet; `markers` writes the markers of ended
    /// transactions.
    pub fn new(config: TxnConfig, markers: Arc<dyn TxnMarkers>) -> Self {
        Self {
            partitions: CoordinatorPartitions::new(
                TRANSACTION_STATE_TOPIC,
                crate::group::records::partition_for,
                Transactions::default(),
            ),
            config,
            markers,
            transaction_version: std::sync::atomic::AtomicI16::new(0),
        }
    }

    /// Follows the finalized `transaction.version` (0 until called).
    pub fn set_transaction_version(&self, level: i16) {
        self.transaction_version
            .store(level, std::sync::atomic::Ordering::Relaxed);
    }

    fn transaction_version(&self) -> i16 {
        self.transaction_version
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes `__transaction_state`'s leadership: see [`CoordinatorPartitions::update`].
    pub fn update(
        &self,
        count: Option<i32>,
        led: Vec<(i32, Arc<dyn CoordinatorLog>)>,
    ) -> Vec<Load> {
        self.partitions.update(count, led)
    }

    /// Replays a gained partition (blocking): see [`CoordinatorPartitions::load`].
    /// Transactions found prepared but not complete get their markers on the next tick.
    pub fn load(&self, load: Load) -> Result<usize, LogError> {
        self.partitions.load(load)
    }

    /// The partition of `transactional_id` in `__transaction_state`, when it exists here.
    pub fn partition_of(&self, transactional_id: &str) -> Option<i32> {
        self.partitions.partition_of(transactional_id)
    }

    /// Whether this node coordinates `transactional_id` (FindCoordinator names it then).
    pub fn coordinates(&self, transactional_id: &str) -> Result<(), ResponseError> {
        self.partitions
            .owner(transactional_id)
            .map(drop)
            .map_err(not_served)
    }

    fn ids(&self) -> &Mutex<HashMap<String, TxnMetadata>> {
        &self.partitions.state().ids
    }

    /// The log of `id`'s partition and what `decide` makes of its state: INVALID_REQUEST for
    /// an empty id, the coordinator's error when it is not served here,
    /// INVALID_PRODUCER_ID_MAPPING for an id never initialised.
    fn decide<T>(
        &self,
        id: &str,
        decide: impl FnOnce(&mut TxnMetadata) -> Result<T, ResponseError>,
    ) -> Result<(Arc<dyn CoordinatorLog>, T), ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        let log = self.partitions.owner(id).map_err(not_served)?;
        let mut ids = self.ids().lock();
        let meta = ids
            .get_mut(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        Ok((log, decide(meta)?))
    }

    /// Appends `transition` for `id` and applies it once replicated; abandons it otherwise.
    async fn write(
        &self,
        log: &dyn CoordinatorLog,
        id: &str,
        transition: Transition,
        now_ms: i64,
    ) -> Result<StoredTransaction, ResponseError> {
        let record = (
            records::encode_key(id),
            Some(records::encode_value(&transition.stored)),
        );
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        let written = match log.append(&[record], now_ms, deadline) {
            Ok(replication) => replication.await,
            Err(e) => Err(e),
        };
        let mut ids = self.ids().lock();
        let Some(meta) = ids.get_mut(id) else {
            // Unloaded meanwhile: the partition moved.
            return Err(ResponseError::NotCoordinator);
        };
        match written {
            Ok(()) => {
                let stored = transition.stored.clone();
                meta.complete(transition).map_err(|e| e.error())?;
                Ok(stored)
            }
            Err(e) => {
                meta.abandon();
                tracing::warn!(transactional_id = id, error = %e, "writing to __transaction_state failed");
                Err(CoordinatorError::Write(e).error())
            }
        }
    }

    /// InitProducerId with a transactional id: the producer id and epoch to use. An open
    /// transaction of an older producer is aborted first and CONCURRENT_TRANSACTIONS
    /// answered, so the client retries. `allocate` hands out a new producer id.
    pub async fn init_producer_id<F, Fut>(
        self: &Arc<Self>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        allocate: F,
        now_ms: i64,
    ) -> Result<(i64, i16), ResponseError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, ResponseError>>,
    {
        if id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let log = self.partitions.owner(id).map_err(not_served)?;
        // A new id, or an exhausted epoch, needs a producer id: allocated before deciding.
        let needs_id = self
            .ids()
            .lock()
            .get(id)
            .is_none_or(|m| super::state::epoch_exhausted(m.current().producer_epoch));
        let fresh = if needs_id {
            Some(allocate().await?)
        } else {
            None
        };
        let step = {
            let mut ids = self.ids().lock();
            let meta = match (ids.contains_key(id), fresh) {
                (true, _) => ids.get_mut(id),
                (false, Some(pid)) => Some(
                    ids.entry(id.to_owned())
                        .or_insert_with(|| TxnMetadata::new(id, pid, timeout_ms, now_ms)),
                ),
                (false, None) => None,
            }
            .ok_or(ResponseError::ConcurrentTransactions)?;
            requests::init_producer_id(
                meta,
                timeout_ms,
                expected,
                || fresh.unwrap_or(-1),
                self.transaction_version(),
                now_ms,
            )?
        };
        match step {
            InitStep::Write(t) => {
                let stored = self.write(log.as_ref(), id, t, now_ms).await?;
                Ok((stored.producer_id, stored.producer_epoch))
            }
            InitStep::AbortThenRetry(t) => {
                let stored = self.write(log.as_ref(), id, t, now_ms).await?;
                self.complete_in_background(id, stored);
                Err(ResponseError::ConcurrentTransactions)
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's `__consumer_offsets`
    /// partition): once this returns Ok, the producer may write to `partitions`.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &TxnPartitions,
        client_transaction_version: i16,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        let (log, step) = self.decide(id, |meta| {
            requests::add_partitions(
                meta,
                producer_id,
                epoch,
                partitions,
                client_transaction_version,
                now_ms,
            )
        })?;
        match step {
            AddStep::AlreadyAdded => Ok(()),
            AddStep::Write(t) => self.write(log.as_ref(), id, t, now_ms).await.map(drop),
        }
    }

    /// KIP-890 verification before a transactional write: whether each partition is part of
    /// the ongoing transaction of `producer_id`/`epoch`, answered as Kafka's
    /// `handleVerifyPartitionsInTransaction`: INVALID_PRODUCER_ID_MAPPING for an unknown id
    /// or another producer, PRODUCER_FENCED for another epoch, CONCURRENT_TRANSACTIONS while
    /// the transaction is being ended, TRANSACTION_ABORTABLE for a partition not added (or
    /// no transaction open); the partition's leader turns that into INVALID_TXN_STATE for
    /// clients too old to know it.
    pub fn verify(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<Result<(), ResponseError>> {
        let refuse_all = |e: ResponseError| vec![Err(e); partitions.len()];
        if let Err(e) = self.partitions.owner(id) {
            return refuse_all(not_served(e));
        }
        let ids = self.ids().lock();
        let Some(meta) = ids.get(id) else {
            return refuse_all(ResponseError::InvalidProducerIdMapping);
        };
        let current = meta.current();
        if current.producer_id != producer_id {
            return refuse_all(ResponseError::InvalidProducerIdMapping);
        }
        if current.producer_epoch != epoch {
            return refuse_all(ResponseError::ProducerFenced);
        }
        if matches!(
            meta.state(),
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ) {
            return refuse_all(ResponseError::ConcurrentTransactions);
        }
        partitions
            .iter()
            .map(|(topic, index)| {
                let added = meta.state() == TxnState::Ongoing
                    && current
                        .partitions
                        .get(topic)
                        .is_some_and(|ids| ids.contains(index));
                if added {
                    Ok(())
                } else {
                    Err(ResponseError::TransactionAbortable)
                }
            })
            .collect()
    }

    /// EndTxn: once the decision is logged, answers with the producer id and epoch the
    /// producer continues with (transaction version 2 bumps the epoch at every end, and
    /// moves to a producer id from `allocate` when the epoch is exhausted; below version 2
    /// both are -1); the markers and the completion follow in the background.
    #[allow(clippy::too_many_arguments)]
    pub async fn end_txn<F, Fut>(
        self: &Arc<Self>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        client_transaction_version: i16,
        allocate: F,
        now_ms: i64,
    ) -> Result<(i64, i16), ResponseError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, ResponseError>>,
    {
        // An end that exhausts the epoch needs the next producer id: allocated before deciding.
        let needs_id = client_transaction_version >= super::state::EPOCH_BUMP_TRANSACTION_VERSION
            && self
                .ids()
                .lock()
                .get(id)
                .is_some_and(|m| super::state::epoch_exhausted(m.current().producer_epoch));
        let next = if needs_id { allocate().await? } else { -1 };
        let (log, step) = self.decide(id, |meta| {
            requests::end_txn(
                meta,
                producer_id,
                epoch,
                commit,
                client_transaction_version,
                || next,
                now_ms,
            )
        })?;
        match step {
            EndStep::AlreadyEnded { producer_id, epoch } => Ok((producer_id, epoch)),
            EndStep::Write(t) => {
                let stored = self.write(log.as_ref(), id, t, now_ms).await?;
                self.complete_in_background(id, stored.clone());
                let bumps =
                    client_transaction_version >= super::state::EPOCH_BUMP_TRANSACTION_VERSION;
                Ok(match (bumps, stored.next_producer_id) {
                    (false, _) => (-1, -1),
                    // The Complete record moves to the next id at epoch 0: the producer goes on
                    // with it.
                    (true, next) if next >= 0 => (next, 0),
                    (true, _) => (stored.producer_id, stored.producer_epoch),
                })
            }
        }
    }

    /// Writes the markers of a prepared transaction, then logs it complete; retried by
    /// [`Self::tick`] if anything fails on the way.
    fn complete_in_background(self: &Arc<Self>, id: &str, prepared: StoredTransaction) {
        if !self
            .partitions
            .state()
            .completing
            .lock()
            .insert(id.to_owned())
        {
            return;
        }
        let this = Arc::clone(self);
        let id = id.to_owned();
        tokio::spawn(async move {
            let commit = prepared.state == TxnState::PrepareCommit;
            let result = async {
                // The markers carry the epoch the state was loaded at, never a later one
                // the partition moved to: a coordinator that lost the partition meanwhile
                // must not pass for the one that has it now (Kafka's coordinatorEpoch).
                let (log, coordinator_epoch) = this.partitions.owner_at(&id).map_err(not_served)?;
                this.markers
                    .write(
                        prepared.producer_id,
                        prepared.producer_epoch,
                        commit,
                        coordinator_epoch,
                        prepared.partitions.clone(),
                    )
                    .await
                    .map_err(|e| CoordinatorError::Write(e).error())?;
                // Still the coordinator of that epoch, or the transaction is another's now.
                match this.partitions.owner_at(&id) {
                    Ok((_, epoch)) if epoch == coordinator_epoch => {}
                    Ok(_) => return Err(ResponseError::NotCoordinator),
                    Err(e) => return Err(not_served(e)),
                }
                let now_ms = crate::now_ms();
                let transition = {
                    let mut ids = this.ids().lock();
                    let meta = ids.get_mut(&id).ok_or(ResponseError::NotCoordinator)?;
                    if meta.current() != &prepared {
                        return Ok(());
                    }
                    meta.prepare_complete(now_ms).map_err(|e| e.error())?
                };
                this.write(log.as_ref(), &id, transition, now_ms)
                    .await
                    .map(drop)
            }
            .await;
            this.partitions.state().completing.lock().remove(&id);
            match result {
                Ok(()) => tracing::debug!(transactional_id = %id, commit, "transaction complete"),
                Err(error) => {
                    tracing::warn!(transactional_id = %id, ?error, "completing a transaction failed; retried")
                }
            }
        });
    }

    /// Aborts transactions past their timeout, resumes the markers of prepared ones (after
    /// a load or a failure), and forgets ids idle past `transactional.id.expiration.ms`.
    /// Run every few seconds.
    pub async fn tick(self: &Arc<Self>, now_ms: i64) {
        let mut aborts = Vec::new();
        let mut resumes = Vec::new();
        let mut expired = Vec::new();
        let transaction_version = self.transaction_version();
        {
            let mut ids = self.ids().lock();
            let completing = self.partitions.state().completing.lock();
            for (id, meta) in ids.iter_mut() {
                if let Some(t) = requests::abort_timed_out(meta, transaction_version, now_ms) {
                    aborts.push((id.clone(), t));
                } else if matches!(
                    meta.state(),
                    TxnState::PrepareCommit | TxnState::PrepareAbort
                ) && meta.pending().is_none()
                    && !completing.contains(id)
                {
                    resumes.push((id.clone(), meta.current().clone()));
                } else if requests::expired(meta, self.config.id_expiration_ms, now_ms) {
                    if let Ok(t) = meta.prepare_dead() {
                        expired.push((id.clone(), t));
                    }
                }
            }
        }
        for (id, prepared) in resumes {
            tracing::info!(
                transactional_id = %id,
                state = ?prepared.state,
                "finishing a prepared transaction"
            );
            self.complete_in_background(&id, prepared);
        }
        for (id, abort) in aborts {
            let Ok(log) = self.partitions.owner(&id) else {
                continue;
            };
            tracing::info!(transactional_id = %id, "aborting a transaction past its timeout");
            if let Ok(stored) = self.write(log.as_ref(), &id, abort, now_ms).await {
                self.complete_in_background(&id, stored);
            }
        }
        for (id, _dead) in expired {
            let written = match self.partitions.owner(&id) {
                Ok(log) => {
                    let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
                    match log.append(&[(records::encode_key(&id), None)], now_ms, deadline) {
                        Ok(replication) => replication.await.is_ok(),
                        Err(_) => false,
                    }
                }
                Err(_) => false,
            };
            let mut ids = self.ids().lock();
            if written {
                tracing::info!(transactional_id = %id, "transactional id expired");
                ids.remove(&id);
            } else if let Some(meta) = ids.get_mut(&id) {
                meta.abandon();
            }
        }
    }

    /// The transactions this node coordinates, filtered as ListTransactions asks (empty
    /// filters keep all), or COORDINATOR_LOAD_IN_PROGRESS while a partition loads.
    pub fn list(
        &self,
        states: &[TxnState],
        producer_ids: &[i64],
    ) -> Result<Vec<TxnListing>, ResponseError> {
        if self.partitions.any_loading() {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let ids = self.ids().lock();
        let mut listed: Vec<TxnListing> = ids
            .iter()
            .filter(|(_, m)| states.is_empty() || states.contains(&m.state()))
            .filter(|(_, m)| {
                producer_ids.is_empty() || producer_ids.contains(&m.current().producer_id)
            })
            .map(|(id, m)| TxnListing {
                transactional_id: id.clone(),
                state: m.state(),
                stored: m.current().clone(),
            })
            .collect();
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listed)
    }

    /// One transaction as DescribeTransactions shows it.
    pub fn describe(&self, id: &str) -> Result<TxnListing, ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        self.partitions.owner(id).map_err(not_served)?;
        let ids = self.ids().lock();
        let meta = ids.get(id).ok_or(ResponseError::TransactionalIdNotFound)?;
        Ok(TxnListing {
            transactional_id: id.to_owned(),
            state: meta.state(),
            stored: meta.current().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_log::MemoryLog;
    use crate::txn::parts;

    /// A marker as written: producer id, epoch, commit, coordinator epoch, partitions.
    type WrittenMarker = (i64, i16, bool, i32, TxnPartitions);

    /// Markers that are recorded, and fail while `refuse` is set.
    #[derive(Default)]
    struct RecordedMarkers {
        written: Mutex<Vec<WrittenMarker>>,
        refuse: Mutex<bool>,
    }

    impl TxnMarkers for RecordedMarkers {
        fn write(
            &self,
            producer_id: i64,
            epoch: i16,
            commit: bool,
            coordinator_epoch: i32,
            partitions: TxnPartitions,
        ) -> Pin<Box<dyn Future<Output = Result<(), LogError>> + Send>> {
            let refused = *self.refuse.lock();
            if !refused {
                self.written.lock().push((
                    producer_id,
                    epoch,
                    commit,
                    coordinator_epoch,
                    partitions,
                ));
            }
            Box::pin(async move {
                if refused {
                    Err(LogError::new(
                        ResponseError::NotLeaderOrFollower,
                        "leader moved",
                    ))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn coordinator() -> (Arc<TxnCoordinator>, Arc<MemoryLog>, Arc<RecordedMarkers>) {
        coordinator_at(0)
    }

    /// A coordinator that gained its one partition at leader epoch `epoch`.
    fn coordinator_at(epoch: i32) -> (Arc<TxnCoordinator>, Arc<MemoryLog>, Arc<RecordedMarkers>) {
        let markers = Arc::new(RecordedMarkers::default());
        let coordinator = Arc::new(TxnCoordinator::new(TxnConfig::default(), markers.clone()));
        let log = Arc::new(MemoryLog::default());
        log.leader_epoch
            .store(epoch, std::sync::atomic::Ordering::Relaxed);
        reload(&coordinator, &log);
        (coordinator, log, markers)
    }

    /// Reports `log` as the coordinator's partition 0 again and runs the loads that gives.
    fn reload(coordinator: &TxnCoordinator, log: &Arc<MemoryLog>) {
        for load in coordinator.update(Some(1), vec![(0, log.clone() as Arc<dyn CoordinatorLog>)]) {
            coordinator.load(load).unwrap();
        }
    }

    /// Starts a transaction of "app": InitProducerId at time 1 with `timeout_ms`, the new
    /// producer getting `producer_id`, then AddPartitionsToTxn of `partitions` of topic "t"
    /// at `now` from a client of `client_transaction_version`. The producer id and epoch.
    async fn open_transaction(
        c: &Arc<TxnCoordinator>,
        timeout_ms: i32,
        producer_id: i64,
        partitions: &[i32],
        client_transaction_version: i16,
        now: i64,
    ) -> (i64, i16) {
        let (pid, epoch) = c
            .init_producer_id(
                "app",
                timeout_ms,
                None,
                || async move { Ok(producer_id) },
                1,
            )
            .await
            .unwrap();
        c.add_partitions(
            "app",
            pid,
            epoch,
            &parts("t", partitions),
            client_transaction_version,
            now,
        )
        .await
        .unwrap();
        (pid, epoch)
    }

    async fn no_id() -> Result<i64, ResponseError> {
        Err(ResponseError::CoordinatorNotAvailable)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_committed_transaction_is_logged_marked_and_survives_a_reload() {
        // The partition's leader epoch is the coordinator epoch the markers carry.
        let (c, log, markers) = coordinator_at(5);
        let (pid, epoch) = open_transaction(&c, 60_000, 1000, &[0, 1], 0, 2).await;
        assert_eq!((pid, epoch), (1000, 0));
        c.end_txn("app", pid, epoch, true, 0, no_id, 3)
            .await
            .unwrap();
        settle().await;
        assert_eq!(
            markers.written.lock().clone(),
            vec![(1000, 0, true, 5, parts("t", &[0, 1]))]
        );
        assert_eq!(c.describe("app").unwrap().state, TxnState::CompleteCommit);

        // Another node replays the partition and finds the same state.
        let (other, _, _) = coordinator();
        let copy = Arc::new(MemoryLog::default());
        *copy.records.lock() = log.records.lock().clone();
        for load in other.update(Some(1), vec![(0, copy as Arc<dyn CoordinatorLog>)]) {
            other.load(load).unwrap();
        }
        let replayed = other.describe("app").unwrap();
        assert_eq!(
            (replayed.state, replayed.stored.producer_id),
            (TxnState::CompleteCommit, 1000)
        );
    }

    /// Transaction version 2: EndTxn answers the bumped epoch, the markers carry it, and an
    /// epoch exhausted by the end moves the producer to the id allocated for it.
    #[tokio::test]
    async fn version_2_ends_answer_and_mark_with_the_bumped_epoch() {
        let (c, _, markers) = coordinator();
        let (pid, epoch) = open_transaction(&c, 60_000, 1000, &[0], 2, 2).await;
        assert_eq!(
            c.end_txn("app", pid, epoch, true, 2, no_id, 3).await,
            Ok((1000, 1))
        );
        settle().await;
        assert_eq!(
            markers.written.lock().clone(),
            vec![(1000, 1, true, 0, parts("t", &[0]))]
        );
        // The retry with the old epoch is answered with the new one.
        assert_eq!(
            c.end_txn("app", pid, epoch, true, 2, no_id, 4).await,
            Ok((1000, 1))
        );
        // An abort with nothing open still ends (and bumps).
        assert_eq!(
            c.end_txn("app", pid, 1, false, 2, no_id, 5).await,
            Ok((1000, 2))
        );
        settle().await;
        assert_eq!(c.describe("app").unwrap().state, TxnState::CompleteAbort);

        // At the last epoch the answer names the next producer id at epoch 0.
        let last = i16::MAX - 1;
        {
            let mut ids = c.ids().lock();
            let meta = ids.get_mut("app").unwrap();
            *meta = TxnMetadata::loaded(
                "app",
                StoredTransaction {
                    producer_epoch: last,
                    state: TxnState::Ongoing,
                    partitions: parts("t", &[0]),
                    client_transaction_version: 2,
                    ..meta.current().clone()
                },
            );
        }
        assert_eq!(
            c.end_txn("app", pid, last, true, 2, || async { Ok(2000) }, 6)
                .await,
            Ok((2000, 0))
        );
        settle().await;
        let done = c.describe("app").unwrap();
        assert_eq!(
            (
                done.state,
                done.stored.producer_id,
                done.stored.producer_epoch
            ),
            (TxnState::CompleteCommit, 2000, 0)
        );
    }

    #[tokio::test]
    async fn markers_that_fail_are_retried_by_the_tick() {
        let (c, _, markers) = coordinator();
        let (pid, epoch) = open_transaction(&c, 60_000, 7, &[0], 0, 2).await;
        *markers.refuse.lock() = true;
        c.end_txn("app", pid, epoch, false, 0, no_id, 3)
            .await
            .unwrap();
        settle().await;
        assert_eq!(c.describe("app").unwrap().state, TxnState::PrepareAbort);
        // The producer waits: a new transaction cannot start before the abort completes.
        assert_eq!(
            c.add_partitions("app", pid, epoch, &parts("t", &[1]), 0, 4)
                .await,
            Err(ResponseError::ConcurrentTransactions)
        );
        *markers.refuse.lock() = false;
        c.tick(5).await;
        settle().await;
        assert_eq!(c.describe("app").unwrap().state, TxnState::CompleteAbort);
        assert_eq!(markers.written.lock().len(), 1);
    }

    #[tokio::test]
    async fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
        let (c, _, markers) = coordinator();
        let (pid, epoch) = open_transaction(&c, 1000, 7, &[0], 0, 10).await;
        c.tick(500).await;
        assert_eq!(c.describe("app").unwrap().state, TxnState::Ongoing);
        c.tick(1011).await;
        settle().await;
        let listed = c.describe("app").unwrap();
        assert_eq!(
            (listed.state, listed.stored.producer_epoch),
            (TxnState::CompleteAbort, 1)
        );
        assert_eq!(
            markers.written.lock().clone(),
            vec![(7, 1, false, 0, parts("t", &[0]))]
        );
        assert_eq!(
            c.end_txn("app", pid, epoch, true, 0, no_id, 1100).await,
            Err(ResponseError::ProducerFenced)
        );
    }

    #[tokio::test]
    async fn a_timed_out_transaction_fences_the_clients_abort_and_new_producers_wait_for_its_markers(
    ) {
        // Issue #15's sequence: the transaction outlives its timeout while a partition
        // leader is down; the coordinator aborts it under a bumped epoch, the client's own
        // abort is fenced (as Kafka answers a transaction version 1 client), and a new
        // producer is told to retry until every marker of the abort is written.
        let (c, _, markers) = coordinator();
        let (pid, epoch) = open_transaction(&c, 1000, 7, &[0], 0, 10).await;
        *markers.refuse.lock() = true;
        c.tick(1011).await;
        settle().await;
        assert_eq!(
            c.end_txn("app", pid, epoch, false, 0, no_id, 1012).await,
            Err(ResponseError::ProducerFenced)
        );
        for now in [1013, 2000, 3000] {
            c.tick(now).await;
            settle().await;
            assert_eq!(
                c.init_producer_id("app", 1000, None, || async { Ok(8) }, now)
                    .await,
                Err(ResponseError::ConcurrentTransactions),
                "the abort's markers are not all written"
            );
        }
        *markers.refuse.lock() = false;
        c.tick(4000).await;
        settle().await;
        assert_eq!(c.describe("app").unwrap().state, TxnState::CompleteAbort);
        assert_eq!(
            markers.written.lock().clone(),
            vec![(7, 1, false, 0, parts("t", &[0]))]
        );
        // The old producer cannot recover its epoch (KIP-360): the fence left no last epoch.
        assert_eq!(
            c.init_producer_id("app", 1000, Some((pid, epoch)), || async { Ok(8) }, 4001)
                .await,
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            c.init_producer_id("app", 1000, None, || async { Ok(8) }, 4002)
                .await,
            Ok((7, 2))
        );
    }

    #[tokio::test]
    async fn markers_carry_the_epoch_the_state_was_loaded_at_and_a_moved_epoch_reloads() {
        let (c, log, markers) = coordinator_at(3);
        let (pid, epoch) = open_transaction(&c, 60_000, 7, &[0], 0, 2).await;
        *markers.refuse.lock() = true;
        c.end_txn("app", pid, epoch, false, 0, no_id, 3)
            .await
            .unwrap();
        settle().await;
        // The partition was led elsewhere meanwhile (its epoch moved on): this node acts
        // under epoch 3 no more, neither for requests nor for the markers it resumes.
        log.leader_epoch
            .store(5, std::sync::atomic::Ordering::Relaxed);
        *markers.refuse.lock() = false;
        assert_eq!(
            c.init_producer_id("app", 60_000, None, || async { Ok(8) }, 4)
                .await,
            Err(ResponseError::NotCoordinator)
        );
        c.tick(5).await;
        settle().await;
        assert!(markers.written.lock().is_empty());
        // Reported leading it at epoch 5, it loads the partition afresh and finishes the
        // abort under that epoch.
        reload(&c, &log);
        assert_eq!(c.describe("app").unwrap().state, TxnState::PrepareAbort);
        c.tick(6).await;
        settle().await;
        assert_eq!(
            markers.written.lock().clone(),
            vec![(7, 0, false, 5, parts("t", &[0]))]
        );
        assert_eq!(c.describe("app").unwrap().state, TxnState::CompleteAbort);
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing_and_requests_answer_kafkas_errors() {
        let (c, log, _) = coordinator();
        assert_eq!(
            c.init_producer_id("app", 900_001, None, || async { Ok(7) }, 1)
                .await,
            Err(ResponseError::InvalidTransactionTimeout)
        );
        assert_eq!(
            c.init_producer_id("", 1000, None, || async { Ok(7) }, 1)
                .await,
            Err(ResponseError::InvalidRequest)
        );
        let (pid, epoch) = c
            .init_producer_id("app", 1000, None, || async { Ok(7) }, 1)
            .await
            .unwrap();
        *log.refuse.lock() = Some(ResponseError::NotLeaderOrFollower);
        assert_eq!(
            c.add_partitions("app", pid, epoch, &parts("t", &[0]), 0, 2)
                .await,
            Err(ResponseError::NotCoordinator)
        );
        *log.refuse.lock() = None;
        assert_eq!(c.describe("app").unwrap().state, TxnState::Empty);
        c.add_partitions("app", pid, epoch, &parts("t", &[0]), 0, 3)
            .await
            .unwrap();
        assert_eq!(
            c.describe("nobody"),
            Err(ResponseError::TransactionalIdNotFound)
        );
        assert_eq!(c.list(&[TxnState::Ongoing], &[]).unwrap().len(), 1);
        assert_eq!(c.list(&[TxnState::Empty], &[]).unwrap().len(), 0);
    }
}
