//! The single-node controller: the metadata image made durable with a command log and
//! periodic snapshots in one directory.
//!
//! Durability rule: a command is acknowledged only after its log record is fsynced, and
//! published only after that, so every image a reader ever saw survives a crash. Opening
//! loads the newest snapshot and replays the log records after it; the log ends at the
//! first torn or CRC-failing record, which is cut off (it was never acknowledged).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::command::{Applied, Command};
use crate::error::ControllerError;
use crate::image::MetadataImage;

mod files;
mod records;

use files::io_error;

/// Tuning of a [`LocalController`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalControllerOptions {
    /// Write a snapshot and start a new command log after this many commands; 0 disables
    /// automatic snapshots. Default 1,000.
    pub snapshot_every: u64,
}

impl Default for LocalControllerOptions {
    fn default() -> Self {
        LocalControllerOptions {
            snapshot_every: 1000,
        }
    }
}

/// The command log being appended to.
#[derive(Debug)]
struct Writer {
    file: File,
    path: PathBuf,
    /// Length of the durable, valid prefix of `file`.
    len: u64,
    /// Commands appended since the newest snapshot.
    since_snapshot: u64,
    /// Set when a write or fsync failed in a way that leaves the file's state unknown.
    failed: bool,
}

impl Writer {
    fn append(&mut self, record: &[u8]) -> Result<(), ControllerError> {
        if let Err(source) = self.file.write_all(record) {
            // Cut the partial record so later records do not follow garbage.
            let cut = self
                .file
                .set_len(self.len)
                .and_then(|()| self.file.sync_all());
            self.failed = cut.is_err();
            return Err(io_error(&self.path)(source));
        }
        if let Err(source) = self.file.sync_data() {
            // After a failed fsync the page cache may have dropped the dirty pages; what
            // the file holds is unknown.
            self.failed = true;
            return Err(io_error(&self.path)(source));
        }
        self.len += record.len() as u64;
        Ok(())
    }
}

/// Cluster metadata for a single node, persisted in one directory. `Send + Sync`; share it
/// behind an `Arc`. Commands are applied one at a time, in submission order.
#[derive(Debug)]
pub struct LocalController {
    dir: PathBuf,
    options: LocalControllerOptions,
    writer: Mutex<Writer>,
    published: watch::Sender<Arc<MetadataImage>>,
}

impl LocalController {
    /// Opens (creating if needed) the metadata directory `dir` with default options; see
    /// [`LocalController::open_with`].
    pub fn open(dir: &Path) -> Result<LocalController, ControllerError> {
        LocalController::open_with(dir, LocalControllerOptions::default())
    }

    /// Opens (creating if needed) the metadata directory `dir`: loads the newest snapshot,
    /// replays the logged commands after it, cuts a torn or CRC-failing tail off the log
    /// (and drops any later log file), and removes leftover temporary files.
    ///
    /// Errors: [`ControllerError::Io`] when the directory cannot be read or repaired;
    /// [`ControllerError::Corrupt`] when a snapshot does not decode or is inconsistent, a
    /// checksummed record does not decode, indexes have a gap, or a logged command is
    /// refused on replay.
    pub fn open_with(
        dir: &Path,
        options: LocalControllerOptions,
    ) -> Result<LocalController, ControllerError> {
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_error(dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                files::sync_dir(parent)?;
            }
        }
        let listing = files::list(dir)?;
        for tmp in &listing.temporaries {
            files::remove(tmp)?;
        }
        let (mut image, snapshot_index) = match listing.snapshots.last() {
            Some((index, path)) => (files::read_snapshot(path, *index)?, *index),
            None => (MetadataImage::new(), 0),
        };
        for (_, older) in listing.snapshots.iter().rev().skip(1) {
            files::remove(older)?;
        }

        let mut tail: Option<(PathBuf, u64)> = None;
        let mut logs = listing.logs.iter();
        while let Some((_, path)) = logs.next() {
            let corrupt = |reason: String| ControllerError::Corrupt {
                path: path.clone(),
                reason,
            };
            let bytes = fs::read(path).map_err(io_error(path))?;
            let scan = records::scan(&bytes).map_err(corrupt)?;
            for (index, command) in &scan.records {
                let expected = image.applied_index() + 1;
                if *index < expected {
                    continue;
                }
                if *index > expected {
                    return Err(corrupt(format!(
                        "expected command {expected}, found {index}"
                    )));
                }
                image.apply(command).map_err(|rejection| {
                    corrupt(format!("command {index} is refused on replay: {rejection}"))
                })?;
            }
            let valid_len = scan.valid_len as u64;
            tail = Some((path.clone(), valid_len));
            if let Some(reason) = scan.stopped {
                warn!(
                    path = %path.display(),
                    valid_len,
                    dropped_bytes = bytes.len() as u64 - valid_len,
                    %reason,
                    "cutting the metadata log's torn tail"
                );
                let file = files::open_log(path)?;
                file.set_len(valid_len)
                    .and_then(|()| file.sync_all())
                    .map_err(io_error(path))?;
                for (_, later) in logs.by_ref() {
                    warn!(path = %later.display(), "removing a metadata log after the torn one");
                    files::remove(later)?;
                }
            }
        }
        files::sync_dir(dir)?;

        let (file, path, len) = match tail {
            Some((path, len)) => (files::open_log(&path)?, path, len),
            None => {
                let (file, path) = files::create_log(dir, image.applied_index() + 1)?;
                (file, path, 0)
            }
        };
        info!(
            dir = %dir.display(),
            snapshot_index,
            applied_index = image.applied_index(),
            topics = image.topic_count(),
            "metadata loaded"
        );
        let writer = Writer {
            file,
            path,
            len,
            since_snapshot: image.applied_index() - snapshot_index,
            failed: false,
        };
        let (published, _) = watch::channel(Arc::new(image));
        Ok(LocalController {
            dir: dir.to_owned(),
            options,
            writer: Mutex::new(writer),
            published,
        })
    }

    /// Validates `command` on the current image; if it is accepted, appends it to the
    /// command log, fsyncs, then publishes the new image and returns the result. A
    /// snapshot is written afterwards when one is due (its failure is logged, not
    /// returned: the command is already durable).
    ///
    /// Errors: [`ControllerError::Rejected`] for an invalid command (nothing written);
    /// [`ControllerError::Io`] when the append or fsync failed (nothing published; after
    /// a failed fsync the command may or may not be present after a restart, and every
    /// later submission fails until the controller is reopened).
    pub fn submit(&self, command: Command) -> Result<Applied, ControllerError> {
        let mut writer = self.writer.lock();
        if writer.failed {
            return Err(io_error(&writer.path)(std::io::Error::other(
                "an earlier metadata write failed; reopen the controller",
            )));
        }
        let mut next = MetadataImage::clone(&self.published.borrow());
        let applied = next.apply(&command)?;
        let index = next.applied_index();
        writer.append(&records::encode(index, &command))?;
        let next = Arc::new(next);
        self.published.send_replace(Arc::clone(&next));
        debug!(index, command = command.kind(), "metadata command applied");
        writer.since_snapshot += 1;
        let every = self.options.snapshot_every;
        if every > 0 && writer.since_snapshot >= every {
            if let Err(error) = self.snapshot_locked(&mut writer, &next) {
                warn!(%error, index, "metadata snapshot failed; the command log keeps growing");
            }
        }
        Ok(applied)
    }

    /// Writes a snapshot of the current image now and starts a new command log, removing
    /// the older logs and snapshots. Returns the snapshot's index. This also recovers from
    /// an earlier failed log write: the new log replaces the one in an unknown state.
    pub fn snapshot(&self) -> Result<u64, ControllerError> {
        let mut writer = self.writer.lock();
        let image = self.image();
        self.snapshot_locked(&mut writer, &image)?;
        Ok(image.applied_index())
    }

    fn snapshot_locked(
        &self,
        writer: &mut Writer,
        image: &MetadataImage,
    ) -> Result<(), ControllerError> {
        let index = image.applied_index();
        files::write_snapshot(&self.dir, image)?;
        if writer.path == files::log_path(&self.dir, index + 1) && !writer.failed {
            // The current log starts right after the snapshot (it is empty): keep it.
            writer.since_snapshot = 0;
        } else {
            let (file, path) = files::create_log(&self.dir, index + 1)?;
            *writer = Writer {
                file,
                path,
                len: 0,
                since_snapshot: 0,
                failed: false,
            };
        }
        let listing = files::list(&self.dir)?;
        for (_, log) in listing.logs.iter().filter(|(_, p)| *p != writer.path) {
            files::remove(log)?;
        }
        for (_, snapshot) in listing.snapshots.iter().filter(|(i, _)| *i < index) {
            files::remove(snapshot)?;
        }
        files::sync_dir(&self.dir)?;
        info!(index, "metadata snapshot written");
        Ok(())
    }

    /// The current image: a consistent, immutable snapshot (an `Arc` clone).
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.published.borrow())
    }

    /// A receiver that holds the current image and sees every later one, published after
    /// its command is durable. A slow receiver skips intermediate images.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    /// The metadata directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
