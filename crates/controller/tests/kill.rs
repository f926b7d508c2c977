//! A real `kill -9` in the middle of a stream of submissions: every acknowledged command
//! is present after reopening.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use controller::{Command, LocalController, LocalControllerOptions, Uuid};

const CHILD_DIR: &str = "CONTROLLER_KILL_TEST_DIR";

/// In the child: submits commands forever, printing each acknowledged index.
#[test]
fn child_submits_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return; // Only meaningful when started by the test below.
    };
    let options = LocalControllerOptions { snapshot_every: 7 };
    let controller = LocalController::open_with(dir.as_ref(), options).unwrap();
    controller
        .submit(Command::RegisterBroker {
            node_id: 0,
            host: "h".into(),
            port: 9092,
            rack: None,
        })
        .unwrap();
    let mut out = std::io::stdout().lock();
    for n in 1u128.. {
        let command = Command::CreateTopic {
            name: format!("t{n}"),
            topic_id: Uuid::from_u128(n),
            assignments: vec![vec![0]],
            configs: Default::default(),
        };
        controller.submit(command).unwrap();
        writeln!(out, "ack {}", controller.image().applied_index()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_commands_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_submits_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acked = 0u64;
    while acked < 40 && Instant::now() < deadline {
        let Some(line) = lines.next() else { break };
        if let Some(index) = line.unwrap().strip_prefix("ack ") {
            acked = index.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(acked >= 40, "the child acknowledged only {acked} commands");
    let image = LocalController::open(tmp.path()).unwrap().image();
    assert!(
        image.applied_index() >= acked,
        "{} < {acked}",
        image.applied_index()
    );
    image.check_invariants().unwrap();
}
