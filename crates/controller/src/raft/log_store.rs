//! The Raft log and vote, durable in one append-only file per voter (`raft.log`).
//!
//! Every change is a record `[u32 length][u32 CRC32C][JSON]`: appended entries, a
//! truncation, a purge, the vote, the committed position. Opening replays the records in
//! order and cuts the file at the first torn or CRC-failing one (it was never
//! acknowledged). Entries stay in memory until they are purged behind a snapshot; the file
//! is rewritten to the live records when purged ones dominate it.
//!
//! Durability: a vote is fsynced before `save_vote` returns. Appended entries are written
//! at once and acknowledged (openraft's `IOFlushed` callback) by a flusher thread after an
//! `fdatasync`; every callback queued while one sync runs is completed by the next, so
//! syncs are grouped. Truncations, purges and the committed position need no sync of
//! their own: the file is only ever appended, so a later sync covers them in order, and
//! losing them in a crash loses everything after them too.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{invalid_data, Entry, LogId, TypeConfig, Vote};

const FILE_NAME: &str = "raft.log";
/// Rewrite the file when it holds this many records more than the live ones.
const REWRITE_SLACK: usize = 4096;

/// One record of the log file.
#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Entries(Vec<Entry>),
    TruncateAfter(Option<LogId>),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// The Raft log storage: cheap to clone (clones share the same log and serve as readers).
#[derive(Clone)]
pub(crate) struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: PathBuf,
    file: Arc<File>,
    /// Records in the file.
    records: usize,
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    flusher: mpsc::Sender<(Arc<File>, IOFlushed<TypeConfig>)>,
}

impl LogStore {
    /// Opens (creating if needed) the log in `dir`, replaying it and cutting a torn tail.
    pub(crate) fn open(dir: &Path) -> io::Result<LogStore> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut state = Replayed::default();
        let mut at = 0usize;
        let mut records = 0usize;
        while let Some((record, len)) = decode_record(&bytes[at..])? {
            state.apply(record);
            at += len;
            records += 1;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if at < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid_len = at,
                dropped_bytes = bytes.len() - at,
                "cutting the Raft log's torn tail"
            );
            file.set_len(at as u64)?;
            file.sync_all()?;
        }
        sync_dir(dir)?;
        let (flusher, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flush_loop(queue))?;
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                path,
                file: Arc::new(file),
                records,
                entries: state.entries,
                last_purged: state.last_purged,
                vote: state.vote,
                committed: state.committed,
                flusher,
            })),
        })
    }
}

/// The state a replay of the file rebuilds.
#[derive(Default)]
struct Replayed {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl Replayed {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Entries(entries) => {
                for entry in entries {
                    let index = entry.index();
                    if self
                        .last_purged
                        .as_ref()
                        .is_some_and(|p| index <= p.index())
                    {
                        continue;
                    }
                    // An append at `index` replaces whatever followed it.
                    self.entries.split_off(&index);
                    self.entries.insert(index, entry);
                }
            }
            Record::TruncateAfter(last) => {
                let from = last.map_or(0, |l| l.index() + 1);
                self.entries.split_off(&from);
            }
            Record::Purge(upto) => {
                self.entries = self.entries.split_off(&(upto.index() + 1));
                self.last_purged = Some(upto);
            }
            Record::Vote(vote) => self.vote = Some(vote),
            Record::Committed(committed) => self.committed = committed,
        }
    }
}

fn encode_record(record: &Record) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(record).map_err(invalid_data)?;
    let len = u32::try_from(json.len()).map_err(invalid_data)?;
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&json).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// The record at the start of `bytes` and its encoded length; `None` at the end or at a
/// torn or corrupt record. A record whose checksum holds but whose JSON does not decode is
/// an error: it was written whole, so the file is not ours or not this version's.
fn decode_record(bytes: &[u8]) -> io::Result<Option<(Record, usize)>> {
    let Some(header) = bytes.get(..8) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
    let Some(json) = bytes.get(8..8 + len) else {
        return Ok(None);
    };
    if crc32c::crc32c(json) != crc {
        return Ok(None);
    }
    let record = serde_json::from_slice(json).map_err(invalid_data)?;
    Ok(Some((record, 8 + len)))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Completes append callbacks after an fdatasync that covers their writes, grouping every
/// callback that queued up while the previous sync ran.
fn flush_loop(queue: mpsc::Receiver<(Arc<File>, IOFlushed<TypeConfig>)>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter());
        // Sync each distinct file once (a rewrite may have replaced the file meanwhile).
        let mut synced: Vec<(*const File, io::Result<()>)> = Vec::new();
        for (file, _) in &batch {
            let key = Arc::as_ptr(file);
            if !synced.iter().any(|(k, _)| *k == key) {
                synced.push((key, file.sync_data()));
            }
        }
        for (file, callback) in batch {
            let key = Arc::as_ptr(&file);
            let result = match synced.iter().find(|(k, _)| *k == key) {
                Some((_, Ok(()))) | None => Ok(()),
                Some((_, Err(e))) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            callback.io_completed(result);
        }
    }
}

impl Inner {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let bytes = encode_record(record)?;
        (&*self.file).write_all(&bytes)?;
        self.records += 1;
        Ok(())
    }

    /// Replaces the file by one holding only the live state, when dead records dominate.
    fn maybe_rewrite(&mut self) -> io::Result<()> {
        let live = self.entries.len() + 3;
        if self.records < live + REWRITE_SLACK {
            return Ok(());
        }
        let tmp = self.path.with_extension("rewrite");
        let mut out = Vec::new();
        if let Some(vote) = &self.vote {
            out.extend(encode_record(&Record::Vote(*vote))?);
        }
        if let Some(purged) = &self.last_purged {
            out.extend(encode_record(&Record::Purge(*purged))?);
        }
        out.extend(encode_record(&Record::Committed(self.committed))?);
        let entries: Vec<Entry> = self.entries.values().cloned().collect();
        for chunk in entries.chunks(256) {
            out.extend(encode_record(&Record::Entries(chunk.to_vec()))?);
        }
        let mut file = File::create(&tmp)?;
        file.write_all(&out)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        let file = OpenOptions::new().append(true).open(&self.path)?;
        self.file = Arc::new(file);
        self.records = 3 + entries.len().div_ceil(256);
        tracing::debug!(path = %self.path.display(), entries = entries.len(), "Raft log rewritten");
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let inner = self.inner.lock().await;
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.inner.lock().await.vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let inner = self.inner.lock().await;
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id())
            .or_else(|| inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut inner = self.inner.lock().await;
        inner.write(&Record::Vote(*vote))?;
        // The sync blocks: off the runtime's workers.
        let file = Arc::clone(&inner.file);
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(io::Error::other)??;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let mut inner = self.inner.lock().await;
        inner.write(&Record::Committed(committed))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.inner.lock().await.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut inner = self.inner.lock().await;
        inner.write(&Record::Entries(entries.clone()))?;
        for entry in entries {
            inner.entries.insert(entry.index(), entry);
        }
        let file = Arc::clone(&inner.file);
        inner
            .flusher
            .send((file, callback))
            .map_err(|_| io::Error::other("the Raft log flusher stopped"))?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let mut inner = self.inner.lock().await;
        inner.write(&Record::TruncateAfter(last_log_id))?;
        let from = last_log_id.map_or(0, |l| l.index() + 1);
        inner.entries.split_off(&from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut inner = self.inner.lock().await;
        inner.write(&Record::Purge(log_id))?;
        inner.entries = inner.entries.split_off(&(log_id.index() + 1));
        inner.last_purged = Some(log_id);
        inner.maybe_rewrite()
    }
}
