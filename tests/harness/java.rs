//! Kafka's Java client in black-box tests: `TransactionsV2.java` (beside this file), run as a
//! single-file source program with kafka-clients 4.4.0 and slf4j-api from the local Maven
//! repository (`~/.m2`, or the jars named by `STRATA_KAFKA_CLIENTS_JAR` and
//! `STRATA_SLF4J_API_JAR`); fetch them with
//! `mvn dependency:get -Dartifact=org.apache.kafka:kafka-clients:4.4.0`. Java 17 runs it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one Java scenario may take (JVM start and in-memory compilation included).
const JAVA_LIMIT: Duration = Duration::from_secs(150);

fn jar(env: &str, maven_path: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").expect("HOME");
        PathBuf::from(home).join(".m2/repository").join(maven_path)
    });
    assert!(
        path.exists(),
        "{} is missing: fetch it with mvn dependency:get, or name it in {env}",
        path.display()
    );
    path
}

/// Runs one scenario of `TransactionsV2.java` against `bootstrap`; panics with its output
/// unless it exits 0 saying `ok <scenario>`.
pub fn transactions_v2(bootstrap: &str, scenario: &str) {
    let classpath = [
        jar(
            "STRATA_KAFKA_CLIENTS_JAR",
            "org/apache/kafka/kafka-clients/4.4.0/kafka-clients-4.4.0.jar",
        ),
        jar(
            "STRATA_SLF4J_API_JAR",
            "org/slf4j/slf4j-api/2.0.17/slf4j-api-2.0.17.jar",
        ),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harness/TransactionsV2.java");
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(source)
        .args([bootstrap, scenario])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting java (Java 17 is needed)");
    let deadline = Instant::now() + JAVA_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for java") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("the Java scenario {scenario} exceeded {JAVA_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    assert!(
        status.success() && out.contains(&format!("ok {scenario}")),
        "{scenario}: {status}\nstdout:\n{out}\nstderr:\n{err}"
    );
}
