//! `strata verify` against a live cluster: it passes while a node is killed -9 and restarted
//! under acks=all writes, and it finds the writes an unclean leader election loses.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::Cluster as Client;
use strata_tests::cluster::Cluster;
use strata_tests::{run_bounded, strata_bin};

/// Starts `strata verify` with `args` and `--json`.
fn start_verify(bootstrap: &str, args: &[&str]) -> Child {
    Command::new(strata_bin())
        .args(["verify", "-b", bootstrap, "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running strata verify")
}

/// Waits (at most `limit`) for `child` to exit: whether it succeeded, its JSON summary and
/// its standard error.
async fn finish(mut child: Child, limit: Duration) -> (bool, serde_json::Value, String) {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("waiting on strata").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("strata verify did not finish within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout:?}, stderr {stderr}"));
    eprintln!("strata verify: {summary}");
    (output.status.success(), summary, stderr)
}

/// `(leader, replicas, isr)` of partition 0 of `topic` as `address` reports it.
async fn partition_0(address: &str, topic: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let mut client = Client::connect(address).await.ok()?;
    let topics = client.metadata(Some(&[topic]), false).await.ok()?;
    let p = topics.into_iter().find(|t| t.name == topic)?.partitions;
    let p = p.into_iter().find(|p| p.partition == 0)?;
    let mut isr = p.isr;
    isr.sort_unstable();
    Some((p.leader, p.replicas, isr))
}

/// Polls until `done` holds of partition 0; panics after `limit`.
async fn wait_for(
    address: &str,
    topic: &str,
    limit: Duration,
    done: impl Fn(&(i32, Vec<i32>, Vec<i32>)) -> bool,
) -> (i32, Vec<i32>, Vec<i32>) {
    let deadline = Instant::now() + limit;
    loop {
        let state = partition_0(address, topic).await;
        if let Some(s) = state.as_ref().filter(|s| done(s)) {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-0 did not reach the state within {limit:?}: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn verify_passes_while_a_node_is_killed_and_restarted() {
    let mut cluster = Cluster::start(3, 0, &[("replica.lag.time.max.ms", "2000")]);
    run_bounded(Duration::from_secs(240), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let boot = cluster.bootstrap();
        let child = start_verify(
            &boot,
            &[
                "-t",
                "jepsen",
                "-w",
                "3",
                "-r",
                "3",
                "-c",
                "min.insync.replicas=2",
                "-n",
                "1000000",
                "--batch",
                "5",
                "-d",
                "12s",
                "--read-timeout",
                "90s",
            ],
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
        cluster.node(2).kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        cluster.node(2).restart();
        let (success, summary, stderr) = finish(child, Duration::from_secs(200)).await;
        assert!(success, "verify failed: {summary}\n{stderr}");
        assert_eq!(summary["ok"], true, "{summary}");
        assert_eq!(summary["lost"], 0, "{summary}");
        assert!(summary["acknowledged"].as_u64() > Some(100), "{summary}");
        // The kill reached the writers: some requests failed and were retried.
        assert!(summary["write_errors"].as_u64() > Some(0), "{summary}");
        assert!(
            summary["read"].as_u64() >= summary["acknowledged"].as_u64(),
            "{summary}"
        );
    });
}

#[test]
fn verify_finds_writes_lost_to_an_unclean_election() {
    let mut cluster = Cluster::start(3, 0, &[("replica.lag.time.max.ms", "1000")]);
    run_bounded(Duration::from_secs(180), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let any = cluster.node(1).bootstrap();
        let mut client = Client::connect(&any).await.expect("connect");
        let unclean = BTreeMap::from([(
            "unclean.leader.election.enable".to_owned(),
            "true".to_owned(),
        )]);
        client
            .create_topic("planted", 1, 2, &unclean)
            .await
            .expect("create");
        let (leader, replicas, _) = wait_for(&any, "planted", Duration::from_secs(15), |s| {
            s.0 >= 0 && s.2.len() == 2
        })
        .await;
        let follower = *replicas
            .iter()
            .find(|r| **r != leader)
            .expect("two replicas");
        let bystander = 6 - leader - follower;
        let stable = cluster.node(bystander).bootstrap();
        // The follower stops: the leader alone is the ISR and acks=1 writes land only there.
        cluster.node(follower).kill();
        wait_for(&stable, "planted", Duration::from_secs(15), |s| {
            s.2 == vec![leader]
        })
        .await;
        let boot = format!("{stable},{}", cluster.node(leader).bootstrap());
        let child = start_verify(
            &boot,
            &[
                "-t",
                "planted",
                "--acks",
                "1",
                "-w",
                "2",
                "-n",
                "1000000",
                "--batch",
                "5",
                "-d",
                "10s",
                "--read-timeout",
                "60s",
            ],
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        // The leader dies and the stale follower comes back to lead uncleanly.
        cluster.node(leader).kill();
        cluster.node(follower).restart();
        wait_for(&stable, "planted", Duration::from_secs(20), |s| {
            s.0 == follower
        })
        .await;
        let (success, summary, stderr) = finish(child, Duration::from_secs(150)).await;
        assert!(
            !success,
            "verify passed despite the planted loss: {summary}"
        );
        assert_eq!(summary["ok"], false, "{summary}");
        assert!(
            summary["lost"].as_u64() > Some(0),
            "no lost writes reported: {summary}\n{stderr}"
        );
        assert!(
            stderr.contains("anomalies found"),
            "the failure names the anomalies: {stderr}"
        );
    });
}
