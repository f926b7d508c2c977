//! The `--config` file is strict: unknown keys are warned about with a suggestion, settings
//! Strata does not serve stop the start, and Kafka's own `server.properties` format is read.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use strata_tests::{free_port, run_bounded, strata_bin, Node, NodeOptions};

use crate::common::{producer, read_all};

/// A `strata serve` started by hand, killed when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `strata serve --config dir/<file_name>` holding `text`, in `dir`, output to
/// `dir/strata.log`.
fn spawn(dir: &Path, file_name: &str, text: &str) -> Spawned {
    let config = dir.join(file_name);
    std::fs::write(&config, text).expect("config file");
    let controller_port = free_port();
    let log = std::fs::File::create(dir.join("strata.log")).expect("log file");
    let child = Command::new(strata_bin())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--voters", &format!("1@127.0.0.1:{controller_port}")])
        .current_dir(dir)
        .env("RUST_LOG", "info,openraft=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("strata runs");
    Spawned(child)
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("strata.log")).unwrap_or_default()
}

#[test]
fn a_misspelled_key_is_warned_about_with_a_suggestion_and_the_node_still_serves() {
    let node = Node::start(
        NodeOptions::default()
            .property("log.retension.hours", "1")
            .property("num.partitions", "2"),
    );
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        producer(&bootstrap, &[])
            .send(
                FutureRecord::<(), _>::to("typo").payload("still served"),
                Duration::from_secs(20),
            )
            .await
            .expect("produce");
    });
    let got = read_all(&bootstrap, "typo", 2, 1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    let log = node.log();
    let warning = log
        .lines()
        .find(|l| l.contains("unknown property"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(
        warning.contains("WARN")
            && warning.contains(
                "unknown property log.retension.hours is ignored; did you mean log.retention.hours?"
            ),
        "{warning}"
    );
    assert_eq!(
        log.matches("unknown property").count(),
        1,
        "only the misspelled key is reported:\n{log}"
    );
}

#[test]
fn a_sasl_listener_with_gssapi_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let text = format!(
        "\"log.dirs\" = \"{}\"\n\"listeners\" = \"PLAINTEXT://127.0.0.1:{}, SASL_PLAINTEXT://127.0.0.1:{port}\"\n",
        dir.path().join("data").display(),
        free_port()
    );
    let mut node = spawn(dir.path(), "strata.toml", &text);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = node.0.try_wait().expect("waiting on strata") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "strata kept running with a GSSAPI listener:\n{}",
            log_of(dir.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log_of(dir.path());
    assert!(!status.success(), "{status}:\n{log}");
    assert!(
        log.contains(
            "sasl.enabled.mechanisms=GSSAPI: Strata does not serve the SASL mechanism GSSAPI"
        ),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on the refused listener's port"
    );
}

#[test]
fn a_kafka_server_properties_file_is_read_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let text = format!(
        "# Kafka's format, with keys Strata ignores\n\
         process.roles=broker,controller\n\
         node.id=1\n\
         log.dirs={}\n\
         listeners=PLAINTEXT://127.0.0.1:{port}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,\\\n    SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
         num.network.threads=3\n\
         num.partitions=3\n\
         transaction.state.log.replication.factor=1\n",
        dir.path().join("data").display()
    );
    let _node = spawn(dir.path(), "server.properties", &text);
    let bootstrap = format!("127.0.0.1:{port}");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("allow.auto.create.topics", "true")
        .create()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    let partitions = loop {
        // Asking for the topic creates it with num.partitions from the file.
        if let Ok(metadata) =
            consumer.fetch_metadata(Some("from-properties"), Duration::from_secs(2))
        {
            let topic = &metadata.topics()[0];
            if topic.error().is_none() && !topic.partitions().is_empty() {
                break topic.partitions().len();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metadata for the topic:\n{}",
            log_of(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(partitions, 3, "{}", log_of(dir.path()));
    let log = log_of(dir.path());
    assert!(!log.contains("unknown property"), "{log}");
}

#[test]
fn listeners_without_advertised_listeners_advertise_the_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let text = format!(
        "log.dirs={}\nlisteners=PLAINTEXT://127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    let _node = spawn(dir.path(), "server.properties", &text);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .create()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    let advertised = loop {
        if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(2)) {
            if let Some(broker) = metadata.brokers().first() {
                break (broker.host().to_owned(), broker.port());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no metadata:\n{}",
            log_of(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(advertised, ("127.0.0.1".to_owned(), i32::from(port)));
}
