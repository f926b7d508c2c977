//! Durability: grouped syncs (`flush.messages`, `flush.ms`, explicit `flush`) and close.
//!
//! Group commit: at most one sync runs per log. A caller whose data is not yet covered
//! waits for the running sync; when it ends, the next caller syncs everything appended
//! before it started, covering every appender that queued meanwhile. One fdatasync (~3.5 ms
//! here) thus covers many appends.

use std::sync::atomic::Ordering;

use parking_lot::{Condvar, Mutex};

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::log::{floor_index, now_ms, Log};

#[derive(Debug, Default)]
struct FlushState {
    in_progress: bool,
    /// Bumped by truncations: a sync that started before one must not raise the recovery
    /// point past the new, shorter log.
    truncations: u64,
}

/// The per-log sync coordinator.
#[derive(Debug, Default)]
pub(crate) struct FlushGroup {
    state: Mutex<FlushState>,
    done: Condvar,
}

impl FlushGroup {
    pub(crate) fn begin_truncation(&self) {
        self.state.lock().truncations += 1;
    }
    pub(crate) fn end_truncation(&self) {
        self.state.lock().truncations += 1;
    }
}

impl Log {
    /// Fsyncs everything appended; returns the new recovery point.
    pub fn flush(&self) -> Result<i64> {
        self.flush_to(self.log_end_offset(), false)
    }

    /// Flushes when `flush.ms` says the oldest unflushed append is due, or when a roll left
    /// sealed segments above the recovery point (only up to the active segment then, as
    /// Kafka does after a roll).
    /// Returns whether it synced. The data directory's flusher calls this periodically.
    pub fn flush_if_due(&self) -> Result<bool> {
        let config = self.config();
        if self.flush_ms_due(&config, now_ms()) {
            self.flush_to(self.log_end_offset(), false)?;
            return Ok(true);
        }
        let active_base = self.active().base_offset;
        if active_base > self.recovery_point() {
            self.flush_to(active_base, true)?;
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) fn flush_ms_due(&self, config: &LogConfig, now: i64) -> bool {
        let since = self.unflushed_since_ms.load(Ordering::Relaxed);
        config
            .flush_ms
            .is_some_and(|ms| since >= 0 && now - since >= ms as i64)
    }

    /// Makes every offset below `target` durable (grouped with concurrent callers).
    /// `sealed_only` syncs only segments below the active one.
    pub(crate) fn flush_to(&self, target: i64, sealed_only: bool) -> Result<i64> {
        let group = &self.flush_group;
        let mut st = group.state.lock();
        loop {
            let rp = self.recovery_point();
            if rp >= target {
                return Ok(rp);
            }
            if !st.in_progress {
                break;
            }
            group.done.wait(&mut st);
        }
        st.in_progress = true;
        let epoch = st.truncations;
        drop(st);

        // Everything published before this point is covered by the syncs below.
        let (end, dir_dirty) = {
            let _w = self.writer.lock();
            let end = if sealed_only {
                self.active().base_offset
            } else {
                self.log_end_offset()
            };
            if !sealed_only {
                self.unflushed_since_ms.store(-1, Ordering::Relaxed);
            }
            (end, self.roll_pending.swap(false, Ordering::AcqRel))
        };
        let result = self.sync_below(end, dir_dirty);

        let mut st = group.state.lock();
        st.in_progress = false;
        match &result {
            Ok(()) if st.truncations == epoch => {
                self.recovery_point
                    .fetch_max(end.min(self.log_end_offset()), Ordering::AcqRel);
            }
            Ok(()) => {}
            Err(_) => {
                if dir_dirty {
                    self.roll_pending.store(true, Ordering::Release);
                }
                let _ = self.unflushed_since_ms.compare_exchange(
                    -1,
                    now_ms(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        group.done.notify_all();
        drop(st);
        result.map(|()| self.recovery_point())
    }

    /// Syncs the segments holding offsets from the recovery point up to `end`, sealed ones
    /// with their indexes (recovery trusts those), and the directory if segments changed.
    fn sync_below(&self, end: i64, dir_dirty: bool) -> Result<()> {
        let segments = self.segments.load_full();
        let start = floor_index(&segments, self.recovery_point());
        let last = segments.len() - 1;
        for (i, seg) in segments.iter().enumerate().skip(start) {
            if seg.base_offset >= end && i > start {
                break;
            }
            let sealed = i < last;
            match seg.sync(sealed) {
                Ok(()) => {}
                // Deleted by retention or truncation meanwhile: nothing left to sync.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && !self
                            .segments
                            .load()
                            .iter()
                            .any(|s| std::sync::Arc::ptr_eq(s, seg)) => {}
                Err(e) => return Err(e),
            }
            if sealed {
                seg.release_files();
            }
        }
        if dir_dirty {
            crate::fsio::sync_dir(&self.dir)?;
            // The partition directory itself may be new.
            if let Some(parent) = self.dir.parent() {
                crate::fsio::sync_dir(parent)?;
            }
        }
        Ok(())
    }

    /// Closes the log: flush, trim files and indexes. Later appends fail with
    /// [`Error::Closed`]; reads keep working.
    pub fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.flush()?;
        let active = self.seal_for_close()?;
        active.sync(true)
    }

    /// Stops appends and seals the active segment (closing time entry, trimmed files)
    /// without syncing; the caller makes it durable (one `syncfs` for a whole directory).
    pub(crate) fn seal_for_close(&self) -> Result<std::sync::Arc<crate::segment::Segment>> {
        let mut w = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        let params = self.params();
        let active = self.active();
        active.seal(&mut w.indexing, params)?;
        active.release_files();
        Ok(active)
    }

    /// After the caller synced the whole filesystem: everything appended is durable.
    pub(crate) fn mark_synced(&self) {
        let _w = self.writer.lock();
        self.unflushed_since_ms.store(-1, Ordering::Relaxed);
        self.roll_pending.store(false, Ordering::Release);
        self.recovery_point
            .fetch_max(self.log_end_offset(), Ordering::AcqRel);
    }

    /// Stops writes without touching the files (the log is being deleted).
    pub(crate) fn mark_closed(&self) {
        let _w = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        for seg in self.segments.load().iter() {
            seg.release_files();
        }
    }
}
