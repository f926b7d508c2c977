//! The metadata directory's files and the durable ways to change them.
//!
//! - `snapshot-<index>.json`: the whole image after command `index`, written to a `.tmp`
//!   name, fsynced and renamed, so a snapshot file is always complete.
//! - `commands-<base>.log`: commands with indexes from `base` on (see `records`).
//!
//! Indexes are 20-digit zero-padded so names sort in index order.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ControllerError;
use crate::image::MetadataImage;

const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".json";
const LOG_PREFIX: &str = "commands-";
const LOG_SUFFIX: &str = ".log";
const TMP_SUFFIX: &str = ".tmp";

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ControllerError + '_ {
    move |source| ControllerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Path of the snapshot taken after command `index`.
pub(crate) fn snapshot_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{SNAPSHOT_PREFIX}{index:020}{SNAPSHOT_SUFFIX}"))
}

/// Path of the log whose first command has index `base`.
pub(crate) fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{LOG_PREFIX}{base:020}{LOG_SUFFIX}"))
}

fn parse_index(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// What the directory holds, each list sorted by index.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) snapshots: Vec<(u64, PathBuf)>,
    pub(crate) logs: Vec<(u64, PathBuf)>,
    pub(crate) temporaries: Vec<PathBuf>,
}

/// Lists the metadata files in `dir`, ignoring anything else.
pub(crate) fn list(dir: &Path) -> Result<Listing, ControllerError> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        if name.ends_with(TMP_SUFFIX) {
            listing.temporaries.push(path);
        } else if let Some(index) = parse_index(&name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX) {
            listing.snapshots.push((index, path));
        } else if let Some(base) = parse_index(&name, LOG_PREFIX, LOG_SUFFIX) {
            listing.logs.push((base, path));
        }
    }
    listing.snapshots.sort();
    listing.logs.sort();
    Ok(listing)
}

/// Makes renames, creations and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ControllerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Writes `image` as the snapshot of its applied index: temporary file, fsync, rename,
/// directory fsync. Returns the snapshot's path.
pub(crate) fn write_snapshot(
    dir: &Path,
    image: &MetadataImage,
) -> Result<PathBuf, ControllerError> {
    let path = snapshot_path(dir, image.applied_index());
    let mut tmp_name = path.clone().into_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let json = serde_json::to_vec(image).expect("the image serializes to JSON");
    let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_error(&path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Reads and checks the snapshot at `path`, which must hold the image after command
/// `index`.
pub(crate) fn read_snapshot(path: &Path, index: u64) -> Result<MetadataImage, ControllerError> {
    let corrupt = |reason: String| ControllerError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let bytes = fs::read(path).map_err(io_error(path))?;
    let image: MetadataImage =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("does not decode: {e}")))?;
    if image.applied_index() != index {
        return Err(corrupt(format!(
            "holds applied index {}, its name says {index}",
            image.applied_index()
        )));
    }
    image.check_invariants().map_err(corrupt)?;
    Ok(image)
}

/// Opens an existing log for appending.
pub(crate) fn open_log(path: &Path) -> Result<File, ControllerError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_error(path))
}

/// Creates a new, empty log (failing if it exists) and makes its name durable.
pub(crate) fn create_log(dir: &Path, base: u64) -> Result<(File, PathBuf), ControllerError> {
    let path = log_path(dir, base);
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error(&path))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// Removes `path`; a file that is already gone is fine.
pub(crate) fn remove(path: &Path) -> Result<(), ControllerError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path)(e)),
        _ => Ok(()),
    }
}
