//! The local controller's durability: reopen after drop, torn and corrupted log tails,
//! snapshots and log rotation.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use controller::{
    Applied, Command, ConfigResource, ControllerError, LocalController, LocalControllerOptions,
    MetadataImage, Uuid,
};
use proptest::prelude::*;

fn no_snapshots() -> LocalControllerOptions {
    LocalControllerOptions { snapshot_every: 0 }
}

fn create(name: &str, id: u128) -> Command {
    Command::CreateTopic {
        name: name.into(),
        topic_id: Uuid::from_u128(id),
        assignments: vec![vec![0, 1], vec![1, 2], vec![2, 0]],
        configs: [("retention.ms".to_string(), "1000".to_string())].into(),
    }
}

/// A mix of every command kind, all valid in order.
fn script() -> Vec<Command> {
    let mut commands = common::three_brokers();
    commands.extend([
        create("orders", 1),
        create("payments", 2),
        Command::AllocateProducerIds {
            broker_id: 0,
            count: 1000,
        },
        Command::CreatePartitions {
            topic: "orders".into(),
            new_assignments: vec![vec![0, 2]],
        },
        Command::AlterConfigs {
            resource: ConfigResource::Topic("payments".into()),
            changes: [("cleanup.policy".to_string(), Some("compact".to_string()))].into(),
        },
        Command::AlterConfigs {
            resource: ConfigResource::Broker(1),
            changes: [("log.retention.ms".to_string(), Some("5".to_string()))].into(),
        },
        Command::DeleteTopic {
            name: "orders".into(),
        },
        create("orders", 3),
    ]);
    commands
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[test]
fn reopen_restores_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metadata");
    let before = {
        let controller = LocalController::open(&dir).unwrap();
        for command in script() {
            controller.submit(command).unwrap();
        }
        controller.image()
    };
    let controller = LocalController::open(&dir).unwrap();
    assert_eq!(controller.image(), before);
    assert_eq!(controller.image().applied_index(), script().len() as u64);
    controller.submit(create("later", 9)).unwrap();
    drop(controller);
    assert!(LocalController::open(&dir)
        .unwrap()
        .image()
        .topic("later")
        .is_some());
}

#[test]
fn rejected_command_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let controller = LocalController::open(tmp.path()).unwrap();
    let log = &log_files(tmp.path())[0];
    let len = fs::metadata(log).unwrap().len();
    let err = controller
        .submit(Command::DeleteTopic {
            name: "nope".into(),
        })
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::Rejected(ref r) if r.kafka_error_code() == 3),
        "{err}"
    );
    assert_eq!(fs::metadata(log).unwrap().len(), len);
    assert_eq!(controller.image().applied_index(), 0);
}

#[test]
fn producer_ids_are_never_reused_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut firsts = Vec::new();
    for round in 0..3 {
        let controller = LocalController::open(tmp.path()).unwrap();
        if round == 0 {
            controller
                .submit(common::three_brokers().remove(0))
                .unwrap();
        }
        match controller.submit(Command::AllocateProducerIds {
            broker_id: 0,
            count: 1000,
        }) {
            Ok(Applied::ProducerIds { first, .. }) => firsts.push(first),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(firsts, vec![0, 1000, 2000]);
}

#[test]
fn subscribers_see_each_durable_image() {
    let tmp = tempfile::tempdir().unwrap();
    let controller = LocalController::open(tmp.path()).unwrap();
    let mut rx = controller.subscribe();
    assert!(!rx.has_changed().unwrap());
    controller
        .submit(common::three_brokers().remove(0))
        .unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().applied_index(), 1);
    let _ = controller.submit(Command::DeleteTopic {
        name: "nope".into(),
    });
    assert!(
        !rx.has_changed().unwrap(),
        "a rejected command published an image"
    );
}

#[test]
fn snapshots_rotate_the_log_and_reopen_to_the_same_image() {
    let tmp = tempfile::tempdir().unwrap();
    let options = LocalControllerOptions { snapshot_every: 3 };
    let before = {
        let controller = LocalController::open_with(tmp.path(), options).unwrap();
        for command in script() {
            controller.submit(command).unwrap();
        }
        controller.image()
    };
    // 11 commands, snapshots after 3, 6 and 9: one snapshot and one log remain.
    assert_eq!(snapshot_files(tmp.path()).len(), 1);
    assert_eq!(log_files(tmp.path()).len(), 1);
    assert!(log_files(tmp.path())[0].ends_with("commands-00000000000000000010.log"));
    for options in [options, no_snapshots(), LocalControllerOptions::default()] {
        let controller = LocalController::open_with(tmp.path(), options).unwrap();
        assert_eq!(controller.image(), before);
    }
}

#[test]
fn crash_between_snapshot_and_log_removal_is_harmless() {
    let tmp = tempfile::tempdir().unwrap();
    let controller = LocalController::open_with(tmp.path(), no_snapshots()).unwrap();
    for command in script() {
        controller.submit(command).unwrap();
    }
    let old_log = log_files(tmp.path())[0].clone();
    let old_bytes = fs::read(&old_log).unwrap();
    assert_eq!(controller.snapshot().unwrap(), script().len() as u64);
    let before = controller.image();
    drop(controller);
    // Put back the log the snapshot made obsolete, and a half-written snapshot.
    fs::write(&old_log, old_bytes).unwrap();
    fs::write(
        tmp.path().join("snapshot-00000000000000000099.json.tmp"),
        b"{",
    )
    .unwrap();
    let controller = LocalController::open(tmp.path()).unwrap();
    assert_eq!(controller.image(), before);
    controller.submit(create("after", 7)).unwrap();
    drop(controller);
    assert!(LocalController::open(tmp.path())
        .unwrap()
        .image()
        .topic("after")
        .is_some());
}

#[test]
fn repeated_snapshots_keep_one_snapshot_and_one_log() {
    let tmp = tempfile::tempdir().unwrap();
    let controller = LocalController::open(tmp.path()).unwrap();
    controller
        .submit(common::three_brokers().remove(0))
        .unwrap();
    assert_eq!(controller.snapshot().unwrap(), 1);
    assert_eq!(controller.snapshot().unwrap(), 1);
    controller
        .submit(common::three_brokers().remove(1))
        .unwrap();
    assert_eq!(controller.snapshot().unwrap(), 2);
    assert_eq!(
        (
            snapshot_files(tmp.path()).len(),
            log_files(tmp.path()).len()
        ),
        (1, 1)
    );
    let before = controller.image();
    drop(controller);
    assert_eq!(LocalController::open(tmp.path()).unwrap().image(), before);
}

#[test]
fn unreadable_snapshot_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let controller = LocalController::open(tmp.path()).unwrap();
    controller
        .submit(common::three_brokers().remove(0))
        .unwrap();
    controller.snapshot().unwrap();
    drop(controller);
    let snapshot = &snapshot_files(tmp.path())[0];
    fs::write(snapshot, b"{\"brokers\":").unwrap();
    let err = LocalController::open(tmp.path()).unwrap_err();
    assert!(matches!(err, ControllerError::Corrupt { .. }), "{err}");
}

/// A log of `script()` without snapshots: its bytes, the image after each command (index
/// 0 = empty), and the byte offset where each record ends.
struct Recorded {
    name: std::ffi::OsString,
    bytes: Vec<u8>,
    images: Vec<Arc<MetadataImage>>,
    ends: Vec<usize>,
}

fn recorded() -> &'static Recorded {
    static RECORDED: std::sync::OnceLock<Recorded> = std::sync::OnceLock::new();
    RECORDED.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let controller = LocalController::open_with(tmp.path(), no_snapshots()).unwrap();
        let log = log_files(tmp.path())[0].clone();
        let mut images = vec![controller.image()];
        let mut ends = Vec::new();
        for command in script() {
            controller.submit(command).unwrap();
            images.push(controller.image());
            ends.push(fs::metadata(&log).unwrap().len() as usize);
        }
        Recorded {
            name: log.file_name().unwrap().to_owned(),
            bytes: fs::read(&log).unwrap(),
            images,
            ends,
        }
    })
}

/// Opens a directory whose only file is the recorded log replaced by `bytes`, checks it
/// holds the image after `intact` commands, then that appending continues cleanly.
fn reopens_to_prefix(bytes: &[u8], intact: usize) -> Result<(), TestCaseError> {
    let rec = recorded();
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(&rec.name), bytes).unwrap();
    let controller = LocalController::open(tmp.path()).unwrap();
    prop_assert_eq!(&controller.image(), &rec.images[intact]);
    let next = Command::DeleteTopic {
        name: "never".into(),
    };
    prop_assert!(controller.submit(next).is_err());
    controller
        .submit(common::three_brokers().remove(0))
        .unwrap();
    drop(controller);
    let image = LocalController::open(tmp.path()).unwrap().image();
    prop_assert_eq!(image.applied_index(), intact as u64 + 1);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn truncated_log_reopens_to_the_intact_prefix(fraction in 0.0..=1.0f64) {
        let rec = recorded();
        let cut = ((rec.bytes.len() as f64) * fraction) as usize;
        let intact = rec.ends.iter().filter(|end| **end <= cut).count();
        reopens_to_prefix(&rec.bytes[..cut], intact)?;
    }

    #[test]
    fn corrupted_byte_reopens_to_the_records_before_it(fraction in 0.0..1.0f64, flip in 1..=255u8) {
        let rec = recorded();
        let pos = ((rec.bytes.len() as f64) * fraction) as usize;
        let mut bytes = rec.bytes.clone();
        bytes[pos] ^= flip;
        let intact = rec.ends.iter().filter(|end| **end <= pos).count();
        reopens_to_prefix(&bytes, intact)?;
    }

    #[test]
    fn random_histories_survive_reopen(
        commands in common::commands(30),
        every in 0..6u64,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let options = LocalControllerOptions { snapshot_every: every };
        let controller = LocalController::open_with(tmp.path(), options).unwrap();
        let mut expected = MetadataImage::new();
        for command in commands {
            let ours = expected.apply(&command).map_err(ControllerError::from);
            let theirs = controller.submit(command);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok());
        }
        prop_assert_eq!(&*controller.image(), &expected);
        drop(controller);
        let reopened = LocalController::open_with(tmp.path(), options).unwrap();
        prop_assert_eq!(&*reopened.image(), &expected);
    }
}
