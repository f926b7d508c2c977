//! The transaction coordinator's state (KIP-98): one [`TxnMetadata`] per transactional id,
//! its transitions ([`state`]), what each request does with it ([`requests`]) and the
//! `__transaction_state` record formats ([`records`]).
//! Like the group coordinator it does no I/O: a caller prepares a transition, appends its
//! record through a [`crate::CoordinatorLog`], and completes or abandons it.

pub mod records;
pub mod requests;
pub mod state;

pub use records::{StoredTransaction, TxnPartitions};
pub use state::{Transition, TransitionError, TxnMetadata, TxnState};

/// Kafka's internal topic of transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
