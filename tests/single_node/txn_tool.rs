//! `strata txn` (Kafka's `kafka-transactions.sh`) against a real node: a transaction left
//! open by a producer that disappeared is listed and described, its start offset is found
//! among the partition's producers, and aborting it lets read_committed consumers move on
//! long before the transaction's own timeout.

use std::time::Duration;

use rdkafka::producer::Producer;
use strata_tests::tool::{ok, run};
use strata_tests::{run_bounded, Node};

use crate::common::{create_topic, producer};
use crate::transactions::{read, send_all, transactional, values, TIMEOUT};

/// The rows of a table printed by `strata txn` (header first), split into cells.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split('\t').map(|c| c.trim().to_owned()).collect())
        .collect()
}

/// The row whose first cell is `key`, if any.
fn row<'a>(table: &'a [Vec<String>], key: &str) -> Option<&'a Vec<String>> {
    table.iter().skip(1).find(|r| r[0] == key)
}

/// `strata txn <args> -b <bootstrap>`, as arguments of `strata`.
fn txn_args<'a>(bootstrap: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["txn"];
    all.extend_from_slice(args);
    all.extend(["-b", bootstrap]);
    all
}

/// The rows of `strata txn <args> -b <bootstrap>`, which must succeed.
fn txn(bootstrap: &str, args: &[&str]) -> Vec<Vec<String>> {
    rows(&ok(&txn_args(bootstrap, args)))
}

/// `strata txn` arguments describing the producers of `stuck-0`.
const DESCRIBE_PRODUCERS: [&str; 5] =
    ["describe-producers", "--topic", "stuck", "--partition", "0"];

/// `strata txn` arguments aborting the transaction on `stuck-0` that starts at `offset`.
fn abort_at(offset: &str) -> [&str; 7] {
    [
        "abort",
        "--topic",
        "stuck",
        "--partition",
        "0",
        "--start-offset",
        offset,
    ]
}

#[test]
fn a_hanging_transaction_is_listed_described_and_aborted_by_its_start_offset() {
    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "stuck", 1, &[]));
    // Ten minutes: without the tool, readers would wait that long.
    let hanging = transactional(
        &b,
        "app-stuck",
        &[
            ("transaction.timeout.ms", "600000"),
            ("message.timeout.ms", "5000"),
        ],
    );
    run_bounded(TIMEOUT, async {
        hanging.begin_transaction().unwrap();
        send_all(&hanging, "stuck", &values("hung", 3)).await;
    });
    std::mem::forget(hanging);
    let other = producer(&b, &[]);
    run_bounded(TIMEOUT, send_all(&other, "stuck", &values("after", 2)));
    assert_eq!(
        read(
            &b,
            "stuck",
            1,
            "read_committed",
            2,
            Duration::from_millis(500)
        ),
        Vec::<String>::new(),
        "the open transaction holds the last stable offset"
    );

    let listed = txn(&b, &["list"]);
    assert_eq!(
        listed[0],
        [
            "TransactionalId",
            "Coordinator",
            "ProducerId",
            "TransactionState",
            ""
        ]
    );
    let stuck = row(&listed, "app-stuck")
        .expect("app-stuck is listed")
        .clone();
    assert_eq!(stuck[3], "Ongoing");
    let producer_id = stuck[2].clone();
    let filtered = txn(&b, &["list", "--state", "CompleteCommit"]);
    assert!(row(&filtered, "app-stuck").is_none(), "{filtered:?}");
    let by_producer = txn(&b, &["list", "--producer-id", &producer_id]);
    assert_eq!(by_producer.len(), 2, "{by_producer:?}");

    let described = txn(&b, &["describe", "--transactional-id", "app-stuck"]);
    let d = &described[1];
    assert_eq!(
        (&d[1], &d[2], &d[4], &d[5], &d[8]),
        (
            &"app-stuck".to_owned(),
            &producer_id,
            &"Ongoing".to_owned(),
            &"600000".to_owned(),
            &"stuck-0".to_owned()
        ),
        "{described:?}"
    );
    assert!(d[6].parse::<i64>().unwrap() > 0, "start time {}", d[6]);

    // The coordinator still counts the partition in the transaction: not hanging.
    let hanging = txn(
        &b,
        &[
            "find-hanging",
            "--topic",
            "stuck",
            "--max-transaction-timeout",
            "0",
        ],
    );
    assert_eq!(hanging.len(), 1, "{hanging:?}");

    let producers = txn(&b, &DESCRIBE_PRODUCERS);
    let p = row(&producers, &producer_id).expect("the transactional producer");
    assert_eq!(
        p[5], "0",
        "its transaction starts at offset 0: {producers:?}"
    );

    let wrong = run(&txn_args(&b, &abort_at("1")));
    assert!(!wrong.status.success(), "no transaction starts at 1");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("Could not find any open transactions"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    ok(&txn_args(&b, &abort_at("0")));
    assert_eq!(
        read(&b, "stuck", 1, "read_committed", 2, TIMEOUT),
        values("after", 2),
        "the later records, and not the aborted ones"
    );
    let producers = txn(&b, &DESCRIBE_PRODUCERS);
    assert_eq!(row(&producers, &producer_id).unwrap()[5], "None");
}
