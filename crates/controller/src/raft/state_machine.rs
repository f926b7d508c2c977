//! The Raft state machine: the [`MetadataImage`] with the Raft position it reflects, its
//! snapshot on disk, and the publication of every change to local readers and watchers.
//!
//! The image itself is not written on every command: the Raft log is the durable record,
//! and a restart replays it from the newest snapshot (`snapshot.json`, written atomically
//! with the Raft position and membership it covers).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::EntryPayload;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::{invalid_data, LogId, TypeConfig};
use crate::command::{Applied, Command};
use crate::image::MetadataImage;

type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
type Snapshot = openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>;

const SNAPSHOT_FILE: &str = "snapshot.json";
/// Accepted commands kept in memory for watchers that are slightly behind.
const RECENT_COMMANDS: usize = 4096;

/// Accepted commands with the image index each produced, oldest first.
pub(crate) type CommandLog = Vec<(u64, Arc<Command>)>;

/// A change of the published image, in order.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// The command accepted at image index `.0` (the image before it was at `.0 - 1`).
    Command(u64, Arc<Command>),
    /// The image was replaced wholesale (a snapshot was installed).
    Reset,
}

/// The published side of the state machine: what readers of the metadata see. Shared
/// between the Raft state machine and the controller's services.
#[derive(Debug)]
pub(crate) struct Published {
    image: watch::Sender<Arc<MetadataImage>>,
    changes: broadcast::Sender<Change>,
    recent: Mutex<VecDeque<(u64, Arc<Command>)>>,
}

impl Published {
    pub(crate) fn new(image: MetadataImage) -> Published {
        Published {
            image: watch::channel(Arc::new(image)).0,
            changes: broadcast::channel(RECENT_COMMANDS).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// The current image.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.borrow())
    }

    /// A receiver of every later image (a slow one skips intermediate images).
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.subscribe()
    }

    /// A receiver of every later change, and the commands after `from` that are already
    /// applied, when they are all still in memory (`None`: the caller needs the image).
    pub(crate) fn changes_since(
        &self,
        from: u64,
    ) -> (broadcast::Receiver<Change>, Option<CommandLog>) {
        let recent = self.recent.lock();
        let receiver = self.changes.subscribe();
        let current = self.image.borrow().applied_index();
        let oldest = recent.front().map_or(current + 1, |(i, _)| *i);
        let backlog = (from >= oldest.saturating_sub(1) && from <= current)
            .then(|| recent.iter().filter(|(i, _)| *i > from).cloned().collect());
        (receiver, backlog)
    }

    pub(crate) fn publish(&self, image: Arc<MetadataImage>, commands: CommandLog) {
        let mut recent = self.recent.lock();
        for (index, command) in commands {
            recent.push_back((index, Arc::clone(&command)));
            if recent.len() > RECENT_COMMANDS {
                recent.pop_front();
            }
            let _ = self.changes.send(Change::Command(index, command));
        }
        self.image.send_replace(image);
    }

    pub(crate) fn reset(&self, image: Arc<MetadataImage>) {
        let mut recent = self.recent.lock();
        recent.clear();
        self.image.send_replace(image);
        let _ = self.changes.send(Change::Reset);
    }
}

/// What `snapshot.json` holds.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    image: MetadataImage,
}

struct Applying {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The metadata state machine. Clones share state (a clone is the snapshot builder).
#[derive(Clone)]
pub(crate) struct StateMachine {
    dir: PathBuf,
    state: Arc<tokio::sync::Mutex<Applying>>,
    published: Arc<Published>,
}

impl StateMachine {
    /// Opens the state machine in `dir` from its newest snapshot, if any.
    pub(crate) fn open(dir: &Path) -> io::Result<StateMachine> {
        fs::create_dir_all(dir)?;
        let (image, last_applied, membership) = match read_snapshot(dir)? {
            Some(file) => {
                file.image.check_invariants().map_err(invalid_data)?;
                (file.image, file.meta.last_log_id, file.meta.last_membership)
            }
            None => (MetadataImage::new(), None, StoredMembership::default()),
        };
        let published = Arc::new(Published::new(image.clone()));
        Ok(StateMachine {
            dir: dir.to_owned(),
            state: Arc::new(tokio::sync::Mutex::new(Applying {
                image: Arc::new(image),
                last_applied,
                membership,
            })),
            published,
        })
    }

    /// The published side, for readers.
    pub(crate) fn published(&self) -> Arc<Published> {
        Arc::clone(&self.published)
    }
}

fn read_snapshot(dir: &Path) -> io::Result<Option<SnapshotFile>> {
    match fs::read(dir.join(SNAPSHOT_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(invalid_data),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `snapshot.json` atomically (temporary file, fsync, rename, directory fsync).
fn write_snapshot(dir: &Path, file: &SnapshotFile) -> io::Result<()> {
    let bytes = serde_json::to_vec(file).map_err(invalid_data)?;
    let tmp = dir.join("snapshot.json.tmp");
    let mut out = File::create(&tmp)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    File::open(dir)?.sync_all()
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (image, meta) = {
            let state = self.state.lock().await;
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
            };
            (Arc::clone(&state.image), meta)
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            image: MetadataImage::clone(&image),
        };
        let dir = self.dir.clone();
        let data = tokio::task::spawn_blocking(move || {
            write_snapshot(&dir, &file)?;
            serde_json::to_vec(&file.image).map_err(invalid_data)
        })
        .await
        .map_err(io::Error::other)??;
        tracing::info!(index = image.applied_index(), "metadata snapshot written");
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.state.lock().await;
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        let mut state = self.state.lock().await;
        let mut accepted = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            state.last_applied = Some(entry.log_id);
            let outcome = match &entry.payload {
                EntryPayload::Blank => Ok((Applied::Done, state.image.applied_index())),
                EntryPayload::Normal(command) => {
                    let image = Arc::make_mut(&mut state.image);
                    let outcome = image.apply(command);
                    if outcome.is_ok() {
                        accepted.push((image.applied_index(), Arc::new(command.clone())));
                    }
                    outcome.map(|applied| (applied, image.applied_index()))
                }
                EntryPayload::Membership(membership) => {
                    state.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                    Ok((Applied::Done, state.image.applied_index()))
                }
            };
            if let Some(responder) = responder {
                responder.send(outcome);
            }
        }
        if !accepted.is_empty() {
            self.published.publish(Arc::clone(&state.image), accepted);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let image: MetadataImage = serde_json::from_slice(&snapshot).map_err(invalid_data)?;
        image.check_invariants().map_err(invalid_data)?;
        let file = SnapshotFile {
            meta: meta.clone(),
            image,
        };
        let dir = self.dir.clone();
        let file = tokio::task::spawn_blocking(move || write_snapshot(&dir, &file).map(|()| file))
            .await
            .map_err(io::Error::other)??;
        let mut state = self.state.lock().await;
        state.image = Arc::new(file.image);
        state.last_applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        self.published.reset(Arc::clone(&state.image));
        tracing::info!(
            index = state.image.applied_index(),
            "metadata snapshot installed"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let dir = self.dir.clone();
        let file = tokio::task::spawn_blocking(move || read_snapshot(&dir))
            .await
            .map_err(io::Error::other)??;
        match file {
            Some(file) => Ok(Some(Snapshot {
                snapshot: serde_json::to_vec(&file.image).map_err(invalid_data)?,
                meta: file.meta,
            })),
            None => Ok(None),
        }
    }
}
