//! What the transaction coordinator does with each request, decided on a transactional id's
//! [`TxnMetadata`] without I/O: an error to answer at once, or a transition whose record the
//! caller appends (then completes or abandons) before answering. Kafka's
//! `TransactionCoordinator` is the specification, error for error.

use kafka_protocol::error::ResponseError;

use super::records::TxnPartitions;
use super::state::{
    epoch_exhausted, Transition, TxnMetadata, TxnState, EPOCH_BUMP_TRANSACTION_VERSION,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// The next step of an InitProducerId with a transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Append this transition; once written, answer with its producer id and epoch.
    Write(Transition),
    /// A transaction is open: append this abort (the old producer is fenced by its bumped
    /// epoch), write its markers, and answer CONCURRENT_TRANSACTIONS so the client retries
    /// and gets a fresh epoch once the abort is complete.
    AbortThenRetry(Transition),
}

/// InitProducerId for `meta`. `expected` is the producer id and epoch a producer re-initialising
/// after an error sends (KIP-360); `new_producer_id` allocates an id when the epoch is exhausted;
/// `transaction_version` is the finalized level, which the abort of an open transaction
/// follows ([`TxnMetadata::fence_then_abort`]).
pub fn init_producer_id(
    meta: &mut TxnMetadata,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_producer_id: impl FnOnce() -> i64,
    transaction_version: i16,
    now_ms: i64,
) -> Result<InitStep, ResponseError> {
    let current = meta.current();
    // A producer recovering from an error may continue unless another producer took over:
    // its id must be the current one (its epoch is checked by the bump), or the previous
    // one when its epoch was exhausted (a retry of a rotation it never heard back from).
    let valid_expected = |(pid, epoch): (i64, i16)| {
        current.producer_epoch == NO_PRODUCER_EPOCH
            || pid == current.producer_id
            || (pid == current.previous_producer_id && epoch_exhausted(epoch))
    };
    if meta.pending().is_some() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    if !expected.is_none_or(valid_expected) {
        return Err(ResponseError::ProducerFenced);
    }
    match meta.state() {
        TxnState::PrepareCommit | TxnState::PrepareAbort => {
            Err(ResponseError::ConcurrentTransactions)
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            let epoch = meta.current().producer_epoch;
            let transition = if epoch_exhausted(epoch) && expected.is_none_or(|(_, e)| e == epoch) {
                meta.prepare_producer_id_rotation(
                    new_producer_id(),
                    timeout_ms,
                    now_ms,
                    expected.is_some(),
                )
            } else {
                meta.prepare_increment_producer_epoch(timeout_ms, expected.map(|(_, e)| e), now_ms)
            };
            transition.map(InitStep::Write).map_err(|e| e.error())
        }
        TxnState::Ongoing => {
            let fence = meta.prepare_fence_producer_epoch().map_err(|e| e.error())?;
            meta.fence_then_abort(fence, transaction_version, now_ms)
                .map(InitStep::AbortThenRetry)
                .map_err(|e| e.error())
        }
        // Never a current state: Dead is only ever pending, and a fence goes straight on to
        // an abort. Answered as a broken state rather than trusted.
        TxnState::Dead | TxnState::PrepareEpochFence => Err(ResponseError::InvalidTxnState),
    }
}

/// The next step of an AddPartitionsToTxn (or AddOffsetsToTxn, with the group's offsets
/// partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddStep {
    /// Every partition is already in the open transaction: answer at once.
    AlreadyAdded,
    /// Append this transition; once written, answer success.
    Write(Transition),
}

/// AddPartitionsToTxn of `partitions` by the producer `producer_id`/`epoch`.
pub fn add_partitions(
    meta: &mut TxnMetadata,
    producer_id: i64,
    epoch: i16,
    partitions: &TxnPartitions,
    client_transaction_version: i16,
    now_ms: i64,
) -> Result<AddStep, ResponseError> {
    let current = meta.current();
    let ending = matches!(
        meta.state(),
        TxnState::PrepareCommit | TxnState::PrepareAbort
    );
    // Transaction version 2: a producer told of the id an ending transaction moves to
    // (its epoch was exhausted) waits until the end is complete.
    if ending && current.next_producer_id >= 0 && current.next_producer_id == producer_id {
        return Err(ResponseError::ConcurrentTransactions);
    }
    if current.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if current.producer_epoch != epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if meta.pending().is_some()
        || matches!(
            meta.state(),
            TxnState::PrepareCommit | TxnState::PrepareAbort
        )
    {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let already = meta.state() == TxnState::Ongoing
        && partitions.iter().all(|(topic, ids)| {
            current
                .partitions
                .get(topic)
                .is_some_and(|have| ids.is_subset(have))
        });
    if already {
        return Ok(AddStep::AlreadyAdded);
    }
    meta.prepare_add_partitions(partitions, now_ms, client_transaction_version)
        .map(AddStep::Write)
        .map_err(|e| e.error())
}

/// The next step of an EndTxn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// The transaction already ended this way (a retry): answer success with the producer id
    /// and epoch the producer is to continue with.
    AlreadyEnded { producer_id: i64, epoch: i16 },
    /// Append this PrepareCommit/PrepareAbort; once written, answer success and write the
    /// markers to every partition of the transaction, then [`TxnMetadata::prepare_complete`].
    Write(Transition),
}

/// EndTxn from the producer `producer_id`/`epoch`: commit or abort. Below transaction
/// version 2 the epoch must be the current one and a finished transaction is only ended
/// again the same way. From version 2 (EndTxn v5, KIP-890 part 2) every end bumps the
/// epoch, so Kafka's `endTransaction` table applies: a retry names the epoch before the
/// bump (or the last epoch of the previous producer id after a rotation); an abort with the
/// current epoch is allowed from Empty and from a finished transaction (a client unsure
/// whether its transaction started), and `next_producer_id` is called for the id to move to
/// when the bump exhausts the epoch.
pub fn end_txn(
    meta: &mut TxnMetadata,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    client_transaction_version: i16,
    next_producer_id: impl FnOnce() -> i64,
    now_ms: i64,
) -> Result<EndStep, ResponseError> {
    if client_transaction_version < EPOCH_BUMP_TRANSACTION_VERSION {
        return end_txn_v1(meta, producer_id, epoch, commit, now_ms);
    }
    let current = meta.current();
    let state = meta.state();
    let retry_on_overflow = current.previous_producer_id == producer_id
        && epoch == i16::MAX - 1
        && current.producer_epoch == 0;
    let retry_on_bump = i32::from(current.producer_epoch) == i32::from(epoch) + 1;
    let valid_epoch = match state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
        TxnState::CompleteCommit | TxnState::CompleteAbort => {
            retry_on_bump || retry_on_overflow || epoch == current.producer_epoch
        }
        _ => epoch == current.producer_epoch,
    };
    let is_retry = retry_on_bump || retry_on_overflow;
    if current.producer_id != producer_id && !retry_on_overflow {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if !valid_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if meta.pending().is_some() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let ended = EndStep::AlreadyEnded {
        producer_id: current.producer_id,
        epoch: current.producer_epoch,
    };
    let exhausted = epoch_exhausted(current.producer_epoch);
    let prepare = |to: TxnState, no_partition_added: bool| {
        let next = if exhausted {
            next_producer_id()
        } else {
            NO_PRODUCER_ID
        };
        if exhausted && next < 0 {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        meta.prepare_abort_or_commit(
            to,
            client_transaction_version,
            next,
            now_ms,
            no_partition_added,
        )
        .map(EndStep::Write)
        .map_err(|e| e.error())
    };
    match (state, commit) {
        (TxnState::Ongoing, true) => prepare(TxnState::PrepareCommit, false),
        (TxnState::Ongoing, false) => prepare(TxnState::PrepareAbort, false),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if is_retry => {
            Ok(ended)
        }
        (TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Empty, false)
            if !is_retry =>
        {
            prepare(TxnState::PrepareAbort, true)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(ResponseError::ConcurrentTransactions)
        }
        _ => Err(ResponseError::InvalidTxnState),
    }
}

/// EndTxn below transaction version 2: the epoch stays.
fn end_txn_v1(
    meta: &mut TxnMetadata,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndStep, ResponseError> {
    let current = meta.current();
    if current.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if epoch != current.producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if meta.pending().is_some() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let ended = EndStep::AlreadyEnded {
        producer_id: NO_PRODUCER_ID,
        epoch: NO_PRODUCER_EPOCH,
    };
    match (meta.state(), commit) {
        (TxnState::Ongoing, _) => {
            let to = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            meta.prepare_abort_or_commit(to, 0, NO_PRODUCER_ID, now_ms, false)
                .map(EndStep::Write)
                .map_err(|e| e.error())
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(ended),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(ResponseError::ConcurrentTransactions)
        }
        _ => Err(ResponseError::InvalidTxnState),
    }
}

/// The transaction is open past its timeout (`transaction.timeout.ms` from its start) and may
/// be aborted by the coordinator: nothing else is being written for it.
pub fn timed_out(meta: &TxnMetadata, now_ms: i64) -> bool {
    let current = meta.current();
    meta.state() == TxnState::Ongoing
        && meta.pending().is_none()
        && current.start_ms >= 0
        && now_ms.saturating_sub(current.start_ms) > i64::from(current.timeout_ms)
}

/// The coordinator's abort of a timed-out transaction: the producer is fenced (its epoch
/// bumped once) and the transaction aborted, as InitProducerId's fence does, under the
/// finalized `transaction_version`.
pub fn abort_timed_out(
    meta: &mut TxnMetadata,
    transaction_version: i16,
    now_ms: i64,
) -> Option<Transition> {
    if !timed_out(meta, now_ms) {
        return None;
    }
    let fence = meta.prepare_fence_producer_epoch().ok()?;
    meta.fence_then_abort(fence, transaction_version, now_ms)
        .ok()
}

/// The transactional id may be forgotten: no transaction open for `expiration_ms` since its
/// last update (`transactional.id.expiration.ms`).
pub fn expired(meta: &TxnMetadata, expiration_ms: i64, now_ms: i64) -> bool {
    meta.state().expiration_allowed()
        && meta.pending().is_none()
        && now_ms.saturating_sub(meta.current().last_update_ms) >= expiration_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::parts;

    fn written(m: &mut TxnMetadata, t: Transition) {
        m.complete(t).expect("completes");
    }

    fn init(
        m: &mut TxnMetadata,
        expected: Option<(i64, i16)>,
        now: i64,
    ) -> Result<InitStep, ResponseError> {
        init_producer_id(m, 60_000, expected, || 9000, 0, now)
    }

    fn initialised() -> TxnMetadata {
        let mut m = TxnMetadata::new("app", 1000, 60_000, 0);
        let InitStep::Write(t) = init(&mut m, None, 1).unwrap() else {
            panic!("a fresh id is initialised by a write")
        };
        written(&mut m, t);
        m
    }

    #[test]
    fn a_transaction_runs_from_init_to_complete_commit() {
        let mut m = initialised();
        assert_eq!(
            (m.current().producer_id, m.current().producer_epoch),
            (1000, 0)
        );
        let AddStep::Write(t) =
            add_partitions(&mut m, 1000, 0, &parts("t", &[0, 1]), 0, 2).unwrap()
        else {
            panic!("the first add writes")
        };
        written(&mut m, t);
        assert_eq!(
            add_partitions(&mut m, 1000, 0, &parts("t", &[1]), 0, 3),
            Ok(AddStep::AlreadyAdded)
        );
        let EndStep::Write(t) = end_txn(&mut m, 1000, 0, true, 0, || 9000, 4).unwrap() else {
            panic!("commit writes PrepareCommit")
        };
        written(&mut m, t);
        // A retried EndTxn while the markers are written is told to wait.
        assert_eq!(
            end_txn(&mut m, 1000, 0, true, 0, || 9000, 5),
            Err(ResponseError::ConcurrentTransactions)
        );
        let t = m.prepare_complete(6).unwrap();
        written(&mut m, t);
        assert_eq!(
            end_txn(&mut m, 1000, 0, true, 0, || 9000, 7),
            Ok(EndStep::AlreadyEnded {
                producer_id: NO_PRODUCER_ID,
                epoch: NO_PRODUCER_EPOCH
            })
        );
        assert_eq!(
            end_txn(&mut m, 1000, 0, false, 0, || 9000, 7),
            Err(ResponseError::InvalidTxnState)
        );
    }

    #[test]
    fn a_new_producer_fences_the_open_transaction_of_the_old_one() {
        let mut m = initialised();
        let AddStep::Write(t) = add_partitions(&mut m, 1000, 0, &parts("t", &[0]), 0, 2).unwrap()
        else {
            panic!()
        };
        written(&mut m, t);
        // A second producer with the same transactional id: the open transaction is aborted
        // under a bumped epoch and the newcomer told to retry.
        let InitStep::AbortThenRetry(abort) = init(&mut m, None, 3).unwrap() else {
            panic!("an open transaction is fenced first")
        };
        assert_eq!(
            (abort.stored.state, abort.stored.producer_epoch),
            (TxnState::PrepareAbort, 1)
        );
        written(&mut m, abort);
        // The old producer (epoch 0) is fenced everywhere from now on.
        assert_eq!(
            add_partitions(&mut m, 1000, 0, &parts("t", &[1]), 0, 4),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            end_txn(&mut m, 1000, 0, true, 0, || 9000, 4),
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            init(&mut m, None, 4),
            Err(ResponseError::ConcurrentTransactions)
        );
        let t = m.prepare_complete(5).unwrap();
        written(&mut m, t);
        let InitStep::Write(t) = init(&mut m, None, 6).unwrap() else {
            panic!()
        };
        assert_eq!(
            t.stored.producer_epoch, 2,
            "the retry gets an epoch above the fence's"
        );
    }

    #[test]
    fn open_transactions_time_out_and_idle_ids_expire() {
        let mut m = initialised();
        let AddStep::Write(t) = add_partitions(&mut m, 1000, 0, &parts("t", &[0]), 0, 10).unwrap()
        else {
            panic!()
        };
        written(&mut m, t);
        assert!(!timed_out(&m, 10 + 60_000));
        let abort = abort_timed_out(&mut m, 0, 10 + 60_001).expect("timed out");
        assert_eq!(
            (abort.stored.state, abort.stored.producer_epoch),
            (TxnState::PrepareAbort, 1)
        );
        written(&mut m, abort);
        let t = m.prepare_complete(70_000).unwrap();
        written(&mut m, t);
        assert!(!expired(&m, 604_800_000, 70_000 + 604_799_999));
        assert!(expired(&m, 604_800_000, 70_000 + 604_800_000));
    }

    #[test]
    fn wrong_ids_and_epochs_get_kafkas_errors() {
        let mut m = initialised();
        assert_eq!(
            add_partitions(&mut m, 1, 0, &parts("t", &[0]), 0, 2),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(
            end_txn(&mut m, 1000, 0, true, 0, || 9000, 2),
            Err(ResponseError::InvalidTxnState),
            "nothing open"
        );
        assert_eq!(
            init(&mut m, Some((77, 0)), 2),
            Err(ResponseError::ProducerFenced)
        );
        // The producer's own id and current epoch: a KIP-360 recovery bumps the epoch.
        let InitStep::Write(t) = init(&mut m, Some((1000, 0)), 3).unwrap() else {
            panic!()
        };
        assert_eq!(t.stored.producer_epoch, 1);
    }

    /// Transaction version 2: each end bumps the epoch; a retry names the epoch before the
    /// bump; an abort with the current epoch is allowed once the transaction has ended.
    #[test]
    fn version_2_ends_bump_the_epoch_and_retries_name_the_old_one() {
        let mut m = initialised();
        let AddStep::Write(t) = add_partitions(&mut m, 1000, 0, &parts("t", &[0]), 2, 2).unwrap()
        else {
            panic!()
        };
        written(&mut m, t);
        let EndStep::Write(t) = end_txn(&mut m, 1000, 0, true, 2, || 9000, 3).unwrap() else {
            panic!("commit writes PrepareCommit")
        };
        assert_eq!(
            (t.stored.state, t.stored.producer_epoch),
            (TxnState::PrepareCommit, 1)
        );
        written(&mut m, t);
        // The retry (old epoch) waits for the markers; the new epoch cannot end it again.
        assert_eq!(
            end_txn(&mut m, 1000, 0, true, 2, || 9000, 4),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(
            end_txn(&mut m, 1000, 1, true, 2, || 9000, 4),
            Err(ResponseError::ProducerFenced)
        );
        let t = m.prepare_complete(5).unwrap();
        written(&mut m, t);
        assert_eq!(
            end_txn(&mut m, 1000, 0, true, 2, || 9000, 6),
            Ok(EndStep::AlreadyEnded {
                producer_id: 1000,
                epoch: 1
            }),
            "a retry is answered with the bumped epoch"
        );
        assert_eq!(
            end_txn(&mut m, 1000, 0, false, 2, || 9000, 6),
            Err(ResponseError::InvalidTxnState)
        );
        assert_eq!(
            end_txn(&mut m, 1000, 1, true, 2, || 9000, 6),
            Err(ResponseError::InvalidTxnState),
            "nothing open to commit"
        );
        // An abort at the current epoch of a finished transaction bumps again.
        let EndStep::Write(t) = end_txn(&mut m, 1000, 1, false, 2, || 9000, 7).unwrap() else {
            panic!("an abort with nothing open is still an end")
        };
        assert_eq!(
            (t.stored.state, t.stored.producer_epoch),
            (TxnState::PrepareAbort, 2)
        );
        assert_eq!(
            end_txn(&mut m, 1000, 3, false, 2, || 9000, 7),
            Err(ResponseError::ProducerFenced)
        );
    }

    /// Transaction version 2 at the last epoch: the end moves to a new producer id, and a
    /// retry naming the old id's last epoch is answered with the new id.
    #[test]
    fn version_2_epoch_overflow_moves_to_a_new_producer_id() {
        let mut m = TxnMetadata::loaded(
            "app",
            super::super::records::StoredTransaction {
                producer_epoch: i16::MAX - 1,
                state: TxnState::Ongoing,
                partitions: parts("t", &[0]),
                client_transaction_version: 2,
                ..initialised().current().clone()
            },
        );
        let EndStep::Write(t) = end_txn(&mut m, 1000, i16::MAX - 1, true, 2, || 9000, 3).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (t.stored.producer_epoch, t.stored.next_producer_id),
            (i16::MAX, 9000)
        );
        written(&mut m, t);
        let t = m.prepare_complete(4).unwrap();
        written(&mut m, t);
        assert_eq!(
            (m.current().producer_id, m.current().producer_epoch),
            (9000, 0)
        );
        assert_eq!(
            end_txn(&mut m, 1000, i16::MAX - 1, true, 2, || 9001, 5),
            Ok(EndStep::AlreadyEnded {
                producer_id: 9000,
                epoch: 0
            })
        );
    }

    #[test]
    fn an_exhausted_epoch_rotates_the_producer_id() {
        let mut m = TxnMetadata::loaded(
            "app",
            super::super::records::StoredTransaction {
                producer_epoch: i16::MAX - 1,
                ..initialised().current().clone()
            },
        );
        let InitStep::Write(t) = init(&mut m, None, 5).unwrap() else {
            panic!()
        };
        assert_eq!((t.stored.producer_id, t.stored.producer_epoch), (9000, 0));
    }

    /// A transaction of a transaction-version-2 producer, open at epoch 4.
    fn open_version_2_transaction() -> TxnMetadata {
        let mut m = initialised();
        for epoch in 1..=4 {
            let t = m.prepare_increment_producer_epoch(60_000, None, 1).unwrap();
            written(&mut m, t);
            assert_eq!(m.current().producer_epoch, epoch);
        }
        let AddStep::Write(t) = add_partitions(&mut m, 1000, 4, &parts("t", &[0]), 2, 10).unwrap()
        else {
            panic!()
        };
        written(&mut m, t);
        m
    }

    /// Kafka's KAFKA-19367: under transaction version 2 the coordinator's own abort bumps
    /// the epoch once (the fence's bump is not added to the abort's), so the markers carry
    /// epoch + 1 and a late EndTxn of the old epoch is the retry of an end that bumped it.
    #[test]
    fn version_2_coordinator_aborts_bump_the_epoch_once() {
        // A timeout.
        let mut m = open_version_2_transaction();
        let abort = abort_timed_out(&mut m, 2, 10 + 60_001).expect("timed out");
        assert_eq!(
            (abort.stored.state, abort.stored.producer_epoch),
            (TxnState::PrepareAbort, 5)
        );
        assert_eq!(abort.last_producer_epoch, 4);
        assert_eq!(abort.stored.client_transaction_version, 2);
        written(&mut m, abort);
        let t = m.prepare_complete(70_000).unwrap();
        written(&mut m, t);
        assert_eq!(
            end_txn(&mut m, 1000, 4, false, 2, || 9000, 70_001),
            Ok(EndStep::AlreadyEnded {
                producer_id: 1000,
                epoch: 5
            }),
            "the producer's abort at its epoch learns the bumped one"
        );

        // A fence by a new producer's InitProducerId.
        let mut m = open_version_2_transaction();
        let InitStep::AbortThenRetry(abort) =
            init_producer_id(&mut m, 60_000, None, || 9000, 2, 20).unwrap()
        else {
            panic!("an open transaction is fenced first")
        };
        assert_eq!(abort.stored.producer_epoch, 5, "not 6: one bump");
        written(&mut m, abort);
        let t = m.prepare_complete(21).unwrap();
        written(&mut m, t);
        let InitStep::Write(t) = init_producer_id(&mut m, 60_000, None, || 9000, 2, 22).unwrap()
        else {
            panic!()
        };
        assert_eq!(t.stored.producer_epoch, 6, "the retry bumps past the abort");
    }

    /// Below transaction version 2 (the finalized level, whatever the client used) the
    /// fence's bumped epoch is the abort's; a failed write of a version-2 abort leaves the
    /// epoch as it was, so the next attempt bumps it once again, not twice.
    #[test]
    fn coordinator_aborts_follow_the_finalized_transaction_version() {
        let mut m = open_version_2_transaction();
        let abort = abort_timed_out(&mut m, 0, 10 + 60_001).expect("timed out");
        assert_eq!(abort.stored.producer_epoch, 5);
        assert_eq!(abort.stored.client_transaction_version, 0);
        assert_eq!(abort.last_producer_epoch, NO_PRODUCER_EPOCH);

        let mut m = open_version_2_transaction();
        let abort = abort_timed_out(&mut m, 2, 10 + 60_001).expect("timed out");
        assert_eq!(abort.stored.producer_epoch, 5);
        m.abandon();
        assert_eq!(m.current().producer_epoch, 4);
        let again = abort_timed_out(&mut m, 2, 10 + 60_002).expect("still timed out");
        assert_eq!(again.stored.producer_epoch, 5);
    }
}
