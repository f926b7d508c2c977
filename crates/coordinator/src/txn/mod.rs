//! The transaction coordinator's state (KIP-98): one [`TxnMetadata`] per transactional id,
//! its transitions ([`state`]), what each request does with it ([`requests`]) and the
//! `__transaction_state` record formats ([`records`]).
//! The decisions are sans-IO; [`TxnCoordinator`] drives them over the led partitions of
//! `__transaction_state` ([`crate::CoordinatorLog`]) and the broker's marker writes
//! ([`TxnMarkers`]).

pub mod coordinator;
pub mod records;
pub mod requests;
pub mod state;

pub use coordinator::{TxnConfig, TxnCoordinator, TxnListing, TxnMarkers};
pub use records::{StoredTransaction, TxnPartitions};
pub use state::{
    Transition, TransitionError, TxnMetadata, TxnState, EPOCH_BUMP_TRANSACTION_VERSION,
};

/// Kafka's internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// `ids` of `topic` as a transaction's partitions, as the unit tests write them.
#[cfg(test)]
pub(crate) fn parts(topic: &str, ids: &[i32]) -> TxnPartitions {
    [(topic.to_owned(), ids.iter().copied().collect())].into()
}
