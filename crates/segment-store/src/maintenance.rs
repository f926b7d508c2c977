//! Roll, retention, DeleteRecords and truncation: the writer-side operations that change
//! the set of segments.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::CleanupPolicy;
use crate::error::{Error, Result};
use crate::index::IndexingState;
use crate::log::{first_batch_timestamp, Log, Writer};
use crate::segment::Segment;

impl Log {
    /// Rolls a new active segment now (at the log end offset). No-op when the active
    /// segment is empty.
    pub fn roll(&self) -> Result<()> {
        let mut w = self.writer.lock();
        if self.active().size() == 0 {
            return Ok(());
        }
        let end = self.log_end_offset();
        self.roll_locked(&mut w, end)
    }

    /// Seals the active segment and starts one at `base`. An empty active segment is
    /// replaced instead of sealed.
    pub(crate) fn roll_locked(&self, w: &mut Writer, base: i64) -> Result<()> {
        let params = self.params();
        let old = self.active();
        let mut list: Vec<Arc<Segment>> = self.segments.load().as_ref().clone();
        if old.size() == 0 {
            if old.base_offset == base {
                return Ok(());
            }
            list.pop();
            old.delete_files()?;
        } else {
            old.seal(&mut w.indexing, params)?;
            old.release_files();
        }
        list.push(Arc::new(Segment::create(&self.dir, base, params)?));
        self.segments.store(Arc::new(list));
        w.indexing = IndexingState::new();
        w.rolling_ts = None;
        self.roll_pending.store(true, Ordering::Release);
        Ok(())
    }

    /// Deletes whole segments past `retention.ms` / `retention.bytes`, and segments wholly
    /// below the log start offset; returns how many.
    ///
    /// Kafka's rules: oldest first, stopping at the first segment that is kept; only
    /// segments wholly below the high watermark; by time when the segment's largest
    /// timestamp (or file time without timestamps) is older than `now_ms - retention.ms`; by
    /// size while the log minus the segment stays at or above `retention.bytes`. Time and
    /// size only apply with a `delete` cleanup policy. When every segment goes, a new empty
    /// one starts at the log end. The log start moves to the first remaining segment.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let mut w = self.writer.lock();
        let config = self.config();
        let params = self.params();
        let segments = self.segments.load_full();
        let (log_start, log_end, hw) = (
            self.log_start_offset(),
            self.log_end_offset(),
            self.high_watermark(),
        );
        let delete_policy = matches!(
            config.cleanup_policy,
            CleanupPolicy::Delete | CleanupPolicy::CompactDelete
        );
        let total: u64 = segments.iter().map(|s| s.size()).sum();
        let mut excess = if delete_policy && config.retention_bytes >= 0 {
            total as i64 - config.retention_bytes
        } else {
            i64::MIN
        };
        let mut count = 0;
        for (i, seg) in segments.iter().enumerate() {
            let next_base = segments.get(i + 1).map(|s| s.base_offset);
            let upper = next_base.unwrap_or(log_end);
            if hw < upper || (next_base.is_none() && seg.size() == 0) {
                break;
            }
            let below_start = next_base.is_some_and(|b| b <= log_start);
            let by_time = delete_policy && config.retention_ms >= 0 && {
                let (ts, _) = seg.max_timestamp(params)?;
                let largest = if ts >= 0 { ts } else { seg.created_ms };
                now_ms - largest > config.retention_ms
            };
            let size = seg.size() as i64;
            let by_size = excess != i64::MIN && excess - size >= 0;
            if !(below_start || by_time || by_size) {
                break;
            }
            if excess != i64::MIN {
                excess -= size;
            }
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        if count == segments.len() {
            self.roll_locked(&mut w, log_end)?;
        }
        let mut list: Vec<Arc<Segment>> = self.segments.load().as_ref().clone();
        let doomed: Vec<Arc<Segment>> = list.drain(..count).collect();
        let new_start = list[0].base_offset;
        self.segments.store(Arc::new(list));
        self.log_start.fetch_max(new_start, Ordering::AcqRel);
        self.high_watermark.fetch_max(new_start, Ordering::AcqRel);
        self.recovery_point.fetch_max(new_start, Ordering::AcqRel);
        for seg in &doomed {
            tracing::info!(segment = %seg.log_path().display(), "deleting segment by retention");
            seg.delete_files()?;
        }
        self.roll_pending.store(true, Ordering::Release);
        Ok(count)
    }

    /// Moves the log start offset to `offset` (DeleteRecords); returns the new log start.
    /// Segments wholly below it are deleted by the next retention pass. Fails with
    /// [`Error::DeleteBeyondHighWatermark`] past the high watermark; a smaller offset than the
    /// current log start changes nothing.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        let hw = self.high_watermark();
        if offset > hw {
            return Err(Error::DeleteBeyondHighWatermark {
                path: self.dir.clone(),
                offset,
                high_watermark: hw,
            });
        }
        let prev = self.log_start.fetch_max(offset, Ordering::AcqRel);
        Ok(prev.max(offset))
    }

    /// Drops every batch at or after `offset` (a replica's divergent tail).
    ///
    /// A batch holding `offset` goes whole, so the log end becomes the end of the last kept
    /// batch (the base of the segment if none). Discarded bytes are zeroed and synced, whole
    /// later segments deleted. Truncating below the log start empties the log and restarts
    /// it at `offset`. The high watermark and recovery point drop to the new log end.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let mut w = self.writer.lock();
        let log_end = self.log_end_offset();
        if offset >= log_end {
            return Ok(());
        }
        let params = self.params();
        self.flush_group.begin_truncation();
        let segments = self.segments.load_full();
        let keep = segments.partition_point(|s| s.base_offset < offset);
        let new_end;
        if offset < self.log_start_offset() || keep == 0 {
            tracing::warn!(dir = %self.dir.display(), offset, "truncating the whole log");
            for seg in segments.iter() {
                seg.delete_files()?;
            }
            let seg = Arc::new(Segment::create(&self.dir, offset, params)?);
            self.segments.store(Arc::new(vec![seg]));
            self.log_start.store(offset, Ordering::Release);
            self.epochs.lock().clear()?;
            w.indexing = IndexingState::new();
            w.rolling_ts = None;
            new_end = offset;
        } else {
            let list: Vec<Arc<Segment>> = segments[..keep].to_vec();
            let last = list.last().expect("keep > 0").clone();
            // Publish the shorter list before deleting files; readers then stop finding
            // the dropped segments (those holding slices keep them).
            self.set_log_end(offset.min(log_end));
            self.segments.store(Arc::new(list));
            for seg in &segments[keep..] {
                seg.delete_files()?;
            }
            let bytes = last.bytes()?;
            let cut = last
                .find_batch(offset, &bytes, params)
                .map_or(bytes.len(), |(p, _)| p);
            drop(bytes);
            let (state, next) = last.truncate_at(cut as u64, params)?;
            w.indexing = state;
            w.rolling_ts = first_batch_timestamp(&last)?;
            new_end = next.unwrap_or(last.base_offset).max(last.base_offset);
        }
        self.set_log_end(new_end);
        self.truncate_aborted_txns_locked(new_end)?;
        self.epochs.lock().truncate_from_end(new_end)?;
        self.log_start.fetch_min(new_end, Ordering::AcqRel);
        self.high_watermark.fetch_min(new_end, Ordering::AcqRel);
        self.recovery_point.fetch_min(new_end, Ordering::AcqRel);
        self.flush_group.end_truncation();
        crate::fsio::sync_dir(&self.dir)?;
        Ok(())
    }
}
