//! An internal-topic partition in memory, for the coordinators' tests.

use std::sync::atomic::{AtomicI32, Ordering};

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use crate::error::LogError;
use crate::log::{CoordinatorLog, LogEntry, Record, Replication};

/// A partition in memory: one record per offset, replicated at once.
#[derive(Default)]
pub(crate) struct MemoryLog {
    pub(crate) records: Mutex<Vec<Record>>,
    /// When set, appends fail with this error.
    pub(crate) refuse: Mutex<Option<ResponseError>>,
    /// The leader epoch it reports (0 unless set).
    pub(crate) leader_epoch: AtomicI32,
}

impl CoordinatorLog for MemoryLog {
    fn offsets(&self) -> (i64, i64) {
        (0, self.records.lock().len() as i64)
    }

    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<LogEntry>, i64)>, LogError> {
        let records = self.records.lock();
        let end = (end as usize).min(records.len()).min(from as usize + 2);
        if from as usize >= end {
            return Ok(None);
        }
        let entries = records[from as usize..end]
            .iter()
            .map(|(key, value)| LogEntry::Record {
                key: key.clone(),
                value: value.clone(),
                producer_id: None,
            })
            .collect();
        Ok(Some((entries, end as i64)))
    }

    fn append_as(
        &self,
        records: &[Record],
        _producer: Option<(i64, i16)>,
        _now_ms: i64,
        _deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        if let Some(error) = *self.refuse.lock() {
            return Err(LogError::new(error, "refused"));
        }
        self.records.lock().extend_from_slice(records);
        Ok(Box::pin(async { Ok(()) }))
    }

    fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
    }
}
