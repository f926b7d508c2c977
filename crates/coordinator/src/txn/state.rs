//! One transactional id's state and the transitions between its states, as Kafka's
//! transaction coordinator defines them (KIP-98, KIP-360, KIP-890).
//!
//! A change is two steps, so the log stays the truth: `prepare_*` checks the transition and
//! returns the [`StoredTransaction`] to append to `__transaction_state`, marking it pending
//! (no second transition can be prepared meanwhile: callers answer CONCURRENT_TRANSACTIONS);
//! once the record is replicated, [`TxnMetadata::complete`] makes it current, and if the
//! append failed, [`TxnMetadata::abandon`] drops it. The in-memory state runs ahead of the
//! log in one place only, as in Kafka: a fence's bumped epoch, taken over by the abort that
//! follows it ([`TxnMetadata::fence_then_abort`]); if that abort is not written, the next
//! fence reuses the epoch instead of bumping again.
//!
//! Invariant: `current.state` only ever moves along [`TxnState::may_follow`], and every
//! completed transition keeps the producer epoch, bumps it by one, or starts a new producer id
//! at epoch 0.

use kafka_protocol::error::ResponseError;

use super::records::{StoredTransaction, TxnPartitions};

/// No producer id or epoch (Kafka's `RecordBatch.NO_PRODUCER_ID` / `NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_ID: i64 = -1;
/// See [`NO_PRODUCER_ID`].
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// The first client transaction version that bumps the epoch at every transaction end
/// (KIP-890 part 2).
pub const EPOCH_BUMP_TRANSACTION_VERSION: i16 = 2;

/// A transaction's state; the ids are the `TransactionStatus` byte of the log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction open (after InitProducerId, or a finished one forgotten).
    Empty,
    /// Partitions or offsets were added; the transaction is open.
    Ongoing,
    /// EndTxn(commit) was logged; markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fence was logged; markers are being written.
    PrepareAbort,
    /// Every marker of a commit was written.
    CompleteCommit,
    /// Every marker of an abort was written.
    CompleteAbort,
    /// The transactional id expired and is being removed.
    Dead,
    /// A newer producer is fencing an open transaction; an abort follows.
    PrepareEpochFence,
}

impl TxnState {
    const ALL: [TxnState; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    /// The `TransactionStatus` byte.
    pub fn id(self) -> i8 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as i8
    }

    /// The state of a `TransactionStatus` byte; `None` for an unknown one.
    pub fn from_id(id: i8) -> Option<Self> {
        usize::try_from(id)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state Kafka's name stands for (ListTransactions' state filter).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a transition from `previous` to `self` is allowed.
    pub fn may_follow(self, previous: TxnState) -> bool {
        use TxnState::*;
        match self {
            Empty => matches!(previous, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(previous, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => previous == Ongoing,
            // KIP-890: a client unsure of the server's state may abort from a finished one.
            PrepareAbort => matches!(
                previous,
                Ongoing | PrepareEpochFence | Empty | CompleteCommit | CompleteAbort
            ),
            CompleteCommit => previous == PrepareCommit,
            CompleteAbort => previous == PrepareAbort,
            Dead => matches!(previous, Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => previous == Ongoing,
        }
    }

    /// Whether a transactional id in this state may expire (`transactional.id.expiration.ms`).
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            Self::Empty | Self::CompleteCommit | Self::CompleteAbort
        )
    }

    /// Whether a transaction is open or finishing.
    pub fn is_pending_transaction(self) -> bool {
        matches!(
            self,
            Self::Ongoing | Self::PrepareCommit | Self::PrepareAbort
        )
    }
}

/// Why a transition cannot be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Another transition of this id is waiting for its record to be written.
    #[error("a transition to {pending:?} is still being written")]
    Concurrent { pending: TxnState },
    /// The target state cannot follow the current one.
    #[error("{to:?} cannot follow {from:?}")]
    InvalidState { from: TxnState, to: TxnState },
    /// The caller's epoch is neither the current nor the last one: a newer producer took over.
    #[error("producer epoch {given} is fenced (current {current}, last {last})")]
    ProducerFenced { given: i16, current: i16, last: i16 },
    /// The epoch cannot be bumped again; the producer id has to be rotated.
    #[error("producer id {producer_id} has no epoch left")]
    EpochExhausted { producer_id: i64 },
}

impl TransitionError {
    /// The error a client gets.
    pub fn error(&self) -> ResponseError {
        match self {
            Self::Concurrent { .. } => ResponseError::ConcurrentTransactions,
            Self::InvalidState { .. } => ResponseError::InvalidTxnState,
            Self::ProducerFenced { .. } => ResponseError::ProducerFenced,
            Self::EpochExhausted { .. } => ResponseError::InvalidProducerEpoch,
        }
    }
}

/// A transition waiting for its record: what [`TxnMetadata::complete`] makes current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The record value to append (and, once replicated, the new state).
    pub stored: StoredTransaction,
    /// The epoch before the last bump, kept in memory only (Kafka does not log it).
    pub last_producer_epoch: i16,
}

/// One transactional id at its coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    transactional_id: String,
    current: StoredTransaction,
    last_producer_epoch: i16,
    pending: Option<TxnState>,
    /// A fence's epoch bump was not written; the next fence reuses the epoch.
    failed_epoch_fence: bool,
    /// The pending abort follows a fence.
    fencing: bool,
}

/// Whether `epoch` leaves no room for the bump a fence needs.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TxnMetadata {
    /// A transactional id seen for the first time, given `producer_id`.
    pub fn new(
        transactional_id: impl Into<String>,
        producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Self {
        Self {
            transactional_id: transactional_id.into(),
            current: StoredTransaction {
                producer_id,
                previous_producer_id: NO_PRODUCER_ID,
                next_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: TxnPartitions::new(),
                last_update_ms: now_ms,
                start_ms: -1,
                client_transaction_version: 0,
            },
            last_producer_epoch: NO_PRODUCER_EPOCH,
            pending: None,
            failed_epoch_fence: false,
            fencing: false,
        }
    }

    /// The state a replayed log record describes (the last epoch is not logged: unknown).
    pub fn loaded(transactional_id: impl Into<String>, stored: StoredTransaction) -> Self {
        Self {
            transactional_id: transactional_id.into(),
            current: stored,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            pending: None,
            failed_epoch_fence: false,
            fencing: false,
        }
    }

    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// The state as last written to the log.
    pub fn current(&self) -> &StoredTransaction {
        &self.current
    }

    pub fn state(&self) -> TxnState {
        self.current.state
    }

    pub fn last_producer_epoch(&self) -> i16 {
        self.last_producer_epoch
    }

    /// The state a prepared transition is heading to, if one is being written.
    pub fn pending(&self) -> Option<TxnState> {
        self.pending
    }

    fn uses_epoch_bump(version: i16) -> bool {
        version >= EPOCH_BUMP_TRANSACTION_VERSION
    }

    /// Checks `to` against the current and pending state and marks it pending.
    fn prepare(
        &mut self,
        stored: StoredTransaction,
        last_producer_epoch: i16,
    ) -> Result<Transition, TransitionError> {
        if let Some(pending) = self.pending {
            return Err(TransitionError::Concurrent { pending });
        }
        let (from, to) = (self.current.state, stored.state);
        if !to.may_follow(from)
            || stored.producer_id < 0
            || (to != TxnState::Dead && stored.producer_epoch < 0)
        {
            return Err(TransitionError::InvalidState { from, to });
        }
        let stored = StoredTransaction {
            // Kafka records the id in use before the transition as the previous one.
            previous_producer_id: self.current.producer_id,
            ..stored
        };
        self.pending = Some(to);
        Ok(Transition {
            stored,
            last_producer_epoch,
        })
    }

    /// InitProducerId on an id whose transaction is open: bump the epoch so the old producer
    /// is fenced; an abort follows. Reuses the epoch if the last fence was never written.
    pub fn prepare_fence_producer_epoch(&mut self) -> Result<Transition, TransitionError> {
        let epoch = self.current.producer_epoch;
        let bumped = if self.failed_epoch_fence || epoch == i16::MAX {
            epoch
        } else {
            epoch + 1
        };
        let stored = StoredTransaction {
            producer_epoch: bumped,
            state: TxnState::PrepareEpochFence,
            ..self.current.clone()
        };
        let last = self.last_producer_epoch;
        self.prepare(stored, last)
    }

    /// InitProducerId with no transaction open: a new epoch. `expected_epoch` is the
    /// producer's current epoch when it re-initialises after an error (KIP-360): equal to
    /// the current epoch bumps it; equal to the last epoch is a retry and bumps nothing;
    /// anything else is fenced.
    pub fn prepare_increment_producer_epoch(
        &mut self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<Transition, TransitionError> {
        let epoch = self.current.producer_epoch;
        if epoch_exhausted(epoch) {
            return Err(TransitionError::EpochExhausted {
                producer_id: self.current.producer_id,
            });
        }
        let (new_epoch, last) = match expected_epoch {
            None => (epoch + 1, NO_PRODUCER_EPOCH),
            Some(given) if epoch == NO_PRODUCER_EPOCH || given == epoch => (epoch + 1, epoch),
            Some(given) if given == self.last_producer_epoch => (epoch, self.last_producer_epoch),
            Some(given) => {
                return Err(TransitionError::ProducerFenced {
                    given,
                    current: epoch,
                    last: self.last_producer_epoch,
                })
            }
        };
        let stored = StoredTransaction {
            producer_epoch: new_epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: TxnPartitions::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            ..self.current.clone()
        };
        self.prepare(stored, last)
    }

    /// InitProducerId when the epoch is exhausted: a new producer id at epoch 0.
    pub fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> Result<Transition, TransitionError> {
        if self.current.state.is_pending_transaction() {
            return Err(TransitionError::InvalidState {
                from: self.current.state,
                to: TxnState::Empty,
            });
        }
        let last = if record_last_epoch {
            self.current.producer_epoch
        } else {
            NO_PRODUCER_EPOCH
        };
        let stored = StoredTransaction {
            producer_id: new_producer_id,
            producer_epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: TxnPartitions::new(),
            start_ms: -1,
            last_update_ms: now_ms,
            ..self.current.clone()
        };
        self.prepare(stored, last)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the transaction is open with `added` in it; the
    /// first addition starts it.
    pub fn prepare_add_partitions(
        &mut self,
        added: &TxnPartitions,
        now_ms: i64,
        client_transaction_version: i16,
    ) -> Result<Transition, TransitionError> {
        let starts = matches!(
            self.current.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        );
        let mut partitions = if starts {
            TxnPartitions::new()
        } else {
            self.current.partitions.clone()
        };
        for (topic, ids) in added {
            partitions.entry(topic.clone()).or_default().extend(ids);
        }
        let stored = StoredTransaction {
            state: TxnState::Ongoing,
            partitions,
            start_ms: if starts {
                now_ms
            } else {
                self.current.start_ms
            },
            last_update_ms: now_ms,
            client_transaction_version,
            ..self.current.clone()
        };
        let last = self.last_producer_epoch;
        self.prepare(stored, last)
    }

    /// EndTxn (or a timeout's abort): `to` is PrepareCommit or PrepareAbort. Clients of
    /// transaction version 2 get the epoch bumped here; `next_producer_id` is the id to move
    /// to when that bump exhausts the epoch. `no_partition_added` is a version-2 abort of a
    /// transaction that never started: its start time is now.
    pub fn prepare_abort_or_commit(
        &mut self,
        to: TxnState,
        client_transaction_version: i16,
        next_producer_id: i64,
        now_ms: i64,
        no_partition_added: bool,
    ) -> Result<Transition, TransitionError> {
        if !matches!(to, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(TransitionError::InvalidState {
                from: self.current.state,
                to,
            });
        }
        let epoch = self.current.producer_epoch;
        let (new_epoch, last) = if Self::uses_epoch_bump(client_transaction_version) {
            // An abort at the very last epoch goes through unbumped, so a broken producer recovers.
            let bumped = if epoch == i16::MAX && to == TxnState::PrepareAbort {
                epoch
            } else {
                epoch.saturating_add(1)
            };
            (bumped, epoch)
        } else {
            (epoch, self.last_producer_epoch)
        };
        let stored = StoredTransaction {
            producer_epoch: new_epoch,
            state: to,
            start_ms: if no_partition_added {
                now_ms
            } else {
                self.current.start_ms
            },
            next_producer_id,
            last_update_ms: now_ms,
            client_transaction_version,
            ..self.current.clone()
        };
        self.prepare(stored, last)
    }

    /// Every marker was written: CompleteCommit or CompleteAbort. A version-2 transaction whose
    /// bump exhausted the epoch moves to its next producer id at epoch 0.
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<Transition, TransitionError> {
        self.failed_epoch_fence = false;
        let to = if self.current.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        let rotate = Self::uses_epoch_bump(self.current.client_transaction_version)
            && self.current.next_producer_id != NO_PRODUCER_ID;
        let stored = StoredTransaction {
            producer_id: if rotate {
                self.current.next_producer_id
            } else {
                self.current.producer_id
            },
            producer_epoch: if rotate {
                0
            } else {
                self.current.producer_epoch
            },
            next_producer_id: NO_PRODUCER_ID,
            state: to,
            partitions: TxnPartitions::new(),
            last_update_ms: now_ms,
            ..self.current.clone()
        };
        let last = self.last_producer_epoch;
        self.prepare(stored, last)
    }

    /// The id expired: its tombstone is written and the metadata dropped, never completed.
    pub fn prepare_dead(&mut self) -> Result<Transition, TransitionError> {
        let stored = StoredTransaction {
            state: TxnState::Dead,
            partitions: TxnPartitions::new(),
            ..self.current.clone()
        };
        let last = self.last_producer_epoch;
        self.prepare(stored, last)
    }

    /// The prepared transition's record was replicated: it becomes the current state.
    /// A transition that is not the pending one is refused and changes nothing.
    pub fn complete(&mut self, transition: Transition) -> Result<(), TransitionError> {
        let to = transition.stored.state;
        if self.pending != Some(to) || matches!(to, TxnState::Dead | TxnState::PrepareEpochFence) {
            return Err(TransitionError::InvalidState {
                from: self.current.state,
                to,
            });
        }
        self.current = transition.stored;
        self.last_producer_epoch = transition.last_producer_epoch;
        self.pending = None;
        self.fencing = false;
        Ok(())
    }

    /// The prepared transition's record could not be written: nothing changes. A fence whose
    /// bump was lost reuses the epoch next time (the client never saw it).
    pub fn abandon(&mut self) {
        if self.fencing || self.pending == Some(TxnState::PrepareEpochFence) {
            self.failed_epoch_fence = true;
        }
        self.pending = None;
        self.fencing = false;
    }

    /// The abort that follows a fence (InitProducerId over an open transaction, or a
    /// timeout), in place: Kafka moves straight from a prepared fence to PrepareAbort without
    /// logging the fence. `transaction_version` is the finalized `transaction.version` (the
    /// coordinator's own aborts follow the cluster's level, not the client's). Below 2 the
    /// fence's bumped epoch becomes the open transaction's now and the abort keeps it; from
    /// 2 the abort bumps the epoch itself, once (Kafka's KAFKA-19367: the fence's bump is
    /// not added to it), so the markers carry epoch + 1 and the producer's next EndTxn or
    /// InitProducerId learns it.
    pub fn fence_then_abort(
        &mut self,
        fence: Transition,
        transaction_version: i16,
        now_ms: i64,
    ) -> Result<Transition, TransitionError> {
        if self.pending != Some(TxnState::PrepareEpochFence) {
            return Err(TransitionError::InvalidState {
                from: self.current.state,
                to: TxnState::PrepareAbort,
            });
        }
        self.pending = None;
        let bumps_itself = Self::uses_epoch_bump(transaction_version);
        if !bumps_itself {
            self.current.producer_epoch = fence.stored.producer_epoch;
            self.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        let abort = self.prepare_abort_or_commit(
            TxnState::PrepareAbort,
            transaction_version,
            NO_PRODUCER_ID,
            now_ms,
            false,
        )?;
        // Only a fence whose bump is already in memory must not bump again after a failed
        // write; a version-2 abort changed nothing before its record is written.
        self.fencing = !bumps_itself;
        Ok(abort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::parts;

    fn step(
        m: &mut TxnMetadata,
        f: impl FnOnce(&mut TxnMetadata) -> Result<Transition, TransitionError>,
    ) -> StoredTransaction {
        let t = f(m).expect("transition prepares");
        let stored = t.stored.clone();
        m.complete(t).expect("transition completes");
        stored
    }

    /// A fresh id initialised (epoch 0) with one committed transaction, classic protocol.
    #[test]
    fn a_classic_transaction_commits_without_bumping_the_epoch() {
        let mut m = TxnMetadata::new("app", 1000, 60_000, 1);
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, None, 2)
        });
        assert_eq!(
            (m.state(), m.current().producer_epoch),
            (TxnState::Empty, 0)
        );
        step(&mut m, |m| {
            m.prepare_add_partitions(&parts("t", &[0]), 3, 0)
        });
        step(&mut m, |m| {
            m.prepare_add_partitions(&parts("t", &[1]), 4, 0)
        });
        assert_eq!(m.current().partitions, parts("t", &[0, 1]));
        assert_eq!(
            m.current().start_ms,
            3,
            "the first addition starts the transaction"
        );
        step(&mut m, |m| {
            m.prepare_abort_or_commit(TxnState::PrepareCommit, 0, NO_PRODUCER_ID, 5, false)
        });
        let done = step(&mut m, |m| m.prepare_complete(6));
        assert_eq!(
            (done.state, done.producer_epoch),
            (TxnState::CompleteCommit, 0)
        );
        assert!(done.partitions.is_empty());
    }

    #[test]
    fn version_2_bumps_the_epoch_at_each_end_and_rotates_when_exhausted() {
        let mut m = TxnMetadata::new("app", 1000, 60_000, 1);
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, None, 2)
        });
        step(&mut m, |m| {
            m.prepare_add_partitions(&parts("t", &[0]), 3, 2)
        });
        let prepared = step(&mut m, |m| {
            m.prepare_abort_or_commit(TxnState::PrepareAbort, 2, NO_PRODUCER_ID, 4, false)
        });
        assert_eq!(prepared.producer_epoch, 1);
        assert_eq!(m.last_producer_epoch(), 0);
        step(&mut m, |m| m.prepare_complete(5));
        assert_eq!(m.current().producer_epoch, 1);

        // At the last epoch, the end moves to the next producer id at epoch 0.
        let mut m = TxnMetadata::loaded(
            "app",
            StoredTransaction {
                producer_epoch: i16::MAX - 1,
                state: TxnState::Ongoing,
                partitions: parts("t", &[0]),
                start_ms: 3,
                client_transaction_version: 2,
                ..TxnMetadata::new("app", 1000, 60_000, 1).current().clone()
            },
        );
        step(&mut m, |m| {
            m.prepare_abort_or_commit(TxnState::PrepareCommit, 2, 2000, 4, false)
        });
        let done = step(&mut m, |m| m.prepare_complete(5));
        assert_eq!((done.producer_id, done.producer_epoch), (2000, 0));
        assert_eq!(done.previous_producer_id, 1000);
    }

    #[test]
    fn a_producer_with_an_old_epoch_is_fenced_and_a_retry_is_not() {
        let mut m = TxnMetadata::new("app", 1000, 60_000, 1);
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, None, 2)
        });
        // The producer (epoch 0) re-initialises after an error: epoch 1, last 0.
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, Some(0), 3)
        });
        assert_eq!(
            (m.current().producer_epoch, m.last_producer_epoch()),
            (1, 0)
        );
        // Its retry of that call (it still says 0) gets epoch 1 again, not 2.
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, Some(0), 4)
        });
        assert_eq!(m.current().producer_epoch, 1);
        // A new producer (no expected epoch) takes over; the old epoch is then fenced.
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, None, 5)
        });
        let err = m
            .prepare_increment_producer_epoch(60_000, Some(0), 6)
            .unwrap_err();
        assert_eq!(err.error(), ResponseError::ProducerFenced);
        assert_eq!(
            m.pending(),
            None,
            "a refused transition leaves nothing pending"
        );
    }

    #[test]
    fn transitions_are_one_at_a_time_and_only_along_allowed_edges() {
        let mut m = TxnMetadata::new("app", 1000, 60_000, 1);
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, None, 2)
        });
        let err = m
            .prepare_abort_or_commit(TxnState::PrepareCommit, 0, NO_PRODUCER_ID, 3, false)
            .unwrap_err();
        assert_eq!(
            err.error(),
            ResponseError::InvalidTxnState,
            "commit with nothing open"
        );
        let pending = m.prepare_add_partitions(&parts("t", &[0]), 3, 0).unwrap();
        let err = m
            .prepare_add_partitions(&parts("t", &[1]), 3, 0)
            .unwrap_err();
        assert_eq!(err.error(), ResponseError::ConcurrentTransactions);
        // The write failed: nothing changed, and the next attempt may go.
        m.abandon();
        assert_eq!(m.state(), TxnState::Empty);
        assert!(
            m.complete(pending).is_err(),
            "an abandoned transition cannot complete"
        );
        step(&mut m, |m| {
            m.prepare_add_partitions(&parts("t", &[1]), 4, 0)
        });
        assert_eq!(m.state(), TxnState::Ongoing);
        for (to, from) in [
            (TxnState::CompleteCommit, TxnState::Ongoing),
            (TxnState::Dead, TxnState::Ongoing),
            (TxnState::Empty, TxnState::PrepareAbort),
            (TxnState::PrepareEpochFence, TxnState::Empty),
        ] {
            assert!(!to.may_follow(from), "{to:?} after {from:?}");
        }
    }

    #[test]
    fn a_fence_bumps_the_epoch_once_even_if_its_write_failed() {
        let mut m = TxnMetadata::new("app", 1000, 60_000, 1);
        step(&mut m, |m| {
            m.prepare_increment_producer_epoch(60_000, None, 2)
        });
        step(&mut m, |m| {
            m.prepare_add_partitions(&parts("t", &[0]), 3, 0)
        });
        let fence = m.prepare_fence_producer_epoch().unwrap();
        assert_eq!(fence.stored.producer_epoch, 1);
        let abort = m.fence_then_abort(fence, 0, 4).unwrap();
        assert_eq!(
            (abort.stored.state, abort.stored.producer_epoch),
            (TxnState::PrepareAbort, 1)
        );
        m.abandon();
        // The abort was not written: no client saw epoch 1, so the next fence reuses it.
        assert_eq!(
            (m.state(), m.current().producer_epoch),
            (TxnState::Ongoing, 1)
        );
        let again = m.prepare_fence_producer_epoch().unwrap();
        assert_eq!(again.stored.producer_epoch, 1);
        let abort = m.fence_then_abort(again, 0, 5).unwrap();
        m.complete(abort).unwrap();
        let done = step(&mut m, |m| m.prepare_complete(6));
        assert_eq!(
            (done.state, done.producer_epoch),
            (TxnState::CompleteAbort, 1)
        );
    }

    #[test]
    fn state_ids_and_names_are_kafkas() {
        for (id, name) in [
            (0, "Empty"),
            (1, "Ongoing"),
            (2, "PrepareCommit"),
            (3, "PrepareAbort"),
            (4, "CompleteCommit"),
            (5, "CompleteAbort"),
            (6, "Dead"),
            (7, "PrepareEpochFence"),
        ] {
            let state = TxnState::from_id(id).unwrap();
            assert_eq!((state.id(), state.name()), (id, name));
            assert_eq!(TxnState::from_name(name), Some(state));
        }
        assert_eq!(TxnState::from_id(8), None);
        assert_eq!(TxnState::from_id(-1), None);
    }
}
