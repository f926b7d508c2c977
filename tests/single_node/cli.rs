//! The `strata` command-line tools as an operator runs them: options before or after the
//! subcommand, output into a pipe that closes early.

use std::time::{Duration, Instant};

use strata_tests::tool::{ok, run, Strata};
use strata_tests::Node;

#[test]
fn brokers_option_is_accepted_before_the_subcommand() {
    let node = Node::start_default();
    let b = node.bootstrap();
    ok(&["-b", &b, "topic", "create", "global-b", "-p", "1"]);
    assert!(ok(&["--brokers", &b, "topic", "list"]).contains("global-b"));
    assert!(ok(&["topic", "-b", &b, "list"]).contains("global-b"));
    assert!(ok(&["topic", "list", "-b", &b]).contains("global-b"));
    assert!(ok(&["-b", &b, "cluster", "info"]).contains(&b));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let node = Node::start_default();
    let b = node.bootstrap();
    ok(&["topic", "create", "piped", "-p", "8", "-b", &b]);
    for args in [
        &["topic", "describe", "piped", "-b", &b][..],
        &["topic", "list", "-b", &b],
        &["cluster", "info", "-b", &b],
    ] {
        let output = Strata::default().close_stdout().run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains("panicked"),
            "strata {args:?}: {}: {stderr}",
            output.status
        );
    }
}

/// The node's log once it contains `needle`, waiting up to 20 seconds.
fn log_with(node: &Node, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = node.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_have_no_colour_codes_in_a_file_and_are_json_on_request() {
    let text = Node::start_default();
    let log = log_with(&text, "strata is serving");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );

    let json = Node::start(strata_tests::NodeOptions::default().property("log.format", "json"));
    let log = log_with(&json, "strata is serving");
    let mut serving = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["level"].is_string(), "{line}");
        serving |= event["fields"]["message"] == "strata is serving";
    }
    assert!(serving, "{log}");
}

#[test]
fn cluster_info_waits_for_the_brokers_it_is_told_to_expect() {
    // Nothing listens: --wait gives up after its limit with the reason, not at the first refusal.
    let dead = format!("127.0.0.1:{}", strata_tests::free_port());
    let started = Instant::now();
    let output = run(&["-b", &dead, "cluster", "info", "--wait", "2"]);
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "cluster info on {dead} succeeded");
    assert!(stderr.contains("cluster not ready after 2s"), "{stderr}");
    assert!(
        waited >= Duration::from_millis(1500),
        "gave up after {waited:?}"
    );

    let node = Node::start_default();
    let b = node.bootstrap();
    let info = ok(&[
        "-b",
        &b,
        "cluster",
        "info",
        "--wait",
        "10",
        "--expect-brokers",
        "1",
    ]);
    assert!(info.contains(&b), "{info}");
    // A single node never has two live brokers: the wait ends, bounded, with the count.
    let output = run(&[
        "-b",
        &b,
        "cluster",
        "info",
        "--wait",
        "1",
        "--expect-brokers",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("1 of 2 brokers live"), "{stderr}");
}

/// The one JSON line a `--json` run printed.
fn json_line(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn positive(v: &serde_json::Value, path: &[&str]) -> f64 {
    let field = path.iter().fold(v, |v, k| &v[*k]);
    let n = field
        .as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"));
    assert!(n > 0.0, "{path:?} is {n} in {v}");
    n
}

#[test]
fn bench_txn_compares_idempotent_and_transactional_produce_read_committed() {
    let node = Node::start_default();
    let b = node.bootstrap();
    let out = json_line(&ok(&[
        "bench",
        "txn",
        "-b",
        &b,
        "-t",
        "bench-txn",
        "-d",
        "1s",
        "--commit-interval",
        "100ms",
        "--json",
    ]));
    for phase in ["idempotent", "transactional"] {
        let records = positive(&out, &[phase, "records"]);
        assert_eq!(out[phase]["received"].as_f64(), Some(records), "{out}");
        positive(&out, &[phase, "records_per_sec"]);
        let p50 = positive(&out, &[phase, "read_committed_e2e", "p50_ms"]);
        let p99 = positive(&out, &[phase, "read_committed_e2e", "p99_ms"]);
        assert!(p50 <= p99, "{out}");
    }
    positive(&out, &["transactional", "commits"]);
    positive(&out, &["transactional", "commit_latency", "p50_ms"]);
    assert!(out["idempotent"].get("commits").is_none(), "{out}");
    // The transaction's records are read once committed: the table of the run's producer
    // shows no transaction left open.
    let producers = ok(&[
        "txn",
        "describe-producers",
        "--topic",
        "bench-txn",
        "--partition",
        "0",
        "-b",
        &b,
    ]);
    assert_eq!(producers.lines().count(), 3, "two producers: {producers}");
    assert!(
        producers
            .lines()
            .skip(1)
            .all(|l| l.trim_end().ends_with("None")),
        "{producers}"
    );
}

#[test]
fn bench_produce_consume_and_e2e_report_figures() {
    let node = Node::start_default();
    let b = node.bootstrap();
    let produced = json_line(&ok(&[
        "bench", "produce", "-b", &b, "-t", "bench", "-n", "5000", "-s", "200", "--batch", "100",
        "-p", "2", "-z", "lz4", "-d", "20s", "--json",
    ]));
    assert_eq!(produced["records"], 5000, "{produced}");
    assert_eq!(produced["partitions"], 2, "{produced}");
    positive(&produced, &["records_per_sec"]);
    positive(&produced, &["mb_per_sec"]);
    let p50 = positive(&produced, &["request_latency", "p50_ms"]);
    let max = positive(&produced, &["request_latency", "max_ms"]);
    assert!(p50 <= max, "{produced}");

    let consumed = json_line(&ok(&[
        "bench", "consume", "-b", &b, "-t", "bench", "-d", "20s", "--json",
    ]));
    assert_eq!(consumed["records"], 5000, "{consumed}");
    assert_eq!(consumed["bytes"], 5000 * 200, "{consumed}");
    positive(&consumed, &["records_per_sec"]);
    positive(&consumed, &["mb_per_sec"]);
    let limited = json_line(&ok(&[
        "bench", "consume", "-b", &b, "-t", "bench", "-n", "1200", "--json",
    ]));
    assert_eq!(limited["records"], 1200, "{limited}");

    let e2e = json_line(&ok(&[
        "bench",
        "e2e",
        "-b",
        &b,
        "-t",
        "bench-e2e",
        "-n",
        "300",
        "--rate",
        "300",
        "-d",
        "20s",
        "--json",
    ]));
    assert_eq!(e2e["sent"], 300, "{e2e}");
    assert_eq!(e2e["received"], 300, "{e2e}");
    let quantiles: Vec<f64> = ["p50_ms", "p99_ms", "p99_9_ms", "max_ms"]
        .iter()
        .map(|q| positive(&e2e, &["latency", q]))
        .collect();
    assert!(quantiles.windows(2).all(|w| w[0] <= w[1]), "{e2e}");

    // The human summary names the same figures.
    let text = ok(&[
        "bench", "produce", "-b", &b, "-t", "bench", "-n", "100", "-d", "10s",
    ]);
    assert!(text.starts_with("bench produce"), "{text}");
    assert!(text.contains("records_per_sec: "), "{text}");
}

#[test]
fn verify_passes_against_one_healthy_node() {
    let node = Node::start_default();
    let b = node.bootstrap();
    let out = ok(&[
        "verify", "-b", &b, "-r", "1", "-w", "2", "-n", "300", "-d", "20s",
    ]);
    assert!(out.contains("acknowledged:   600"), "{out}");
    assert!(
        out.contains("lost: 0") && out.trim_end().ends_with("OK"),
        "{out}"
    );

    // The fault schedule runs its commands while the writers run, each kill then a restart.
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("faults");
    let kill = format!("echo kill >> {}", log.display());
    let restart = format!("echo restart >> {}", log.display());
    let summary = json_line(&ok(&[
        "verify",
        "-b",
        &b,
        "-r",
        "1",
        "-w",
        "1",
        "-n",
        "100000000",
        "-d",
        "3s",
        "--fault-kill",
        &kill,
        "--fault-restart",
        &restart,
        "--fault-every",
        "500ms",
        "--json",
    ]));
    assert_eq!(summary["ok"], true, "{summary}");
    let kills = summary["fault_kills"].as_u64().expect("fault_kills");
    assert!(kills >= 1, "{summary}");
    assert_eq!(summary["fault_restarts"].as_u64(), Some(kills), "{summary}");
    let ran = std::fs::read_to_string(&log).expect("fault log");
    assert_eq!(ran, "kill\nrestart\n".repeat(kills as usize), "{summary}");
}

#[test]
fn quota_alter_and_describe_round_trip_users_clients_and_defaults() {
    let node = Node::start_default();
    let b = node.bootstrap();
    let altered = ok(&[
        "quota",
        "alter",
        "-b",
        &b,
        "--client",
        "ingest",
        "--add",
        "producer_byte_rate=1048576",
    ]);
    assert_eq!(altered.trim(), "altered quotas of client-id=ingest");
    ok(&[
        "quota",
        "alter",
        "-b",
        &b,
        "--user",
        "alice",
        "--client-default",
        "--add",
        "consumer_byte_rate=2048,request_percentage=12.5",
    ]);
    let all = ok(&["quota", "describe", "-b", &b]);
    assert!(
        all.contains("client-id=ingest producer_byte_rate=1048576"),
        "{all}"
    );
    assert!(
        all.contains(
            "user=alice client-id=<default> consumer_byte_rate=2048,request_percentage=12.5"
        ),
        "{all}"
    );
    let alice = ok(&["quota", "describe", "-b", &b, "--user", "alice"]);
    assert_eq!(alice.lines().count(), 1, "{alice}");
    // Kafka's validation answers, and the tool fails.
    let refused = run(&[
        "quota", "alter", "-b", &b, "--client", "ingest", "--add", "bogus=1",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Invalid configuration key bogus"));
    ok(&[
        "quota",
        "alter",
        "-b",
        &b,
        "--client",
        "ingest",
        "--delete",
        "producer_byte_rate",
    ]);
    let all = ok(&["quota", "describe", "-b", &b]);
    assert!(!all.contains("ingest"), "{all}");
}
