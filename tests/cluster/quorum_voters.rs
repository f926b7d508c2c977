//! KIP-853: the metadata quorum's voters change at run time. A fourth controller joins as
//! an observer through `controller.quorum.bootstrap.servers`, is added with AddRaftVoter
//! (`strata quorum add-voter`), voter 1 is removed with RemoveRaftVoter and killed, and the
//! remaining voters elect a leader and serve CreateTopics and Produce; after a restart of
//! every node the membership is still the changed one (it lives in the Raft log, not in
//! `--voters`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use client::{encode_batch, Cluster as Client, Compression, Connection, OwnedRecord};
use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{
    AddRaftVoterRequest, DescribeQuorumResponse, RemoveRaftVoterRequest,
};
use kafka_protocol::protocol::StrBytes;
use strata_tests::cluster::{quorum_leader, Cluster};
use strata_tests::{free_port_on, run_bounded, tool, Node, NodeOptions};
use uuid::Uuid;

const DUPLICATE_VOTER: i16 = 126;
const VOTER_NOT_FOUND: i16 = 127;
const INVALID_REQUEST: i16 = 42;

async fn describe(address: &str) -> Option<DescribeQuorumResponse> {
    let response = tokio::time::timeout(Duration::from_secs(3), async {
        let mut connection = Connection::connect(address).await.ok()?;
        connection
            .send(client::metadata_quorum_request(), 2)
            .await
            .ok()
    })
    .await
    .ok()
    .flatten()?;
    (response.error_code == 0).then_some(response)
}

/// Voter ids, observer ids with directory ids, and endpoints by node id.
struct View {
    leader: i32,
    voters: BTreeMap<i32, Uuid>,
    observers: BTreeMap<i32, Uuid>,
    endpoints: BTreeMap<i32, String>,
}

async fn view(address: &str) -> Option<View> {
    let response = describe(address).await?;
    let partition = response.topics.first()?.partitions.first()?;
    Some(View {
        leader: partition.leader_id.0,
        voters: partition
            .current_voters
            .iter()
            .map(|r| (r.replica_id.0, r.replica_directory_id))
            .collect(),
        observers: partition
            .observers
            .iter()
            .map(|r| (r.replica_id.0, r.replica_directory_id))
            .collect(),
        endpoints: response
            .nodes
            .iter()
            .filter_map(|n| {
                let l = n.listeners.first()?;
                Some((n.node_id.0, format!("{}:{}", l.host.as_str(), l.port)))
            })
            .collect(),
    })
}

/// Waits until `address` describes a quorum that `accept`s, which it returns.
async fn wait_view(address: &str, limit: Duration, accept: impl Fn(&View) -> bool) -> View {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = view(address).await {
            if v.leader >= 0 && accept(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the quorum {address} describes did not reach the expected state within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn add_voter(address: &str, id: i32, directory: Uuid, endpoint: &str) -> i16 {
    let (host, port) = endpoint.rsplit_once(':').expect("endpoint");
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_timeout_ms(20_000)
        .with_voter_id(id)
        .with_voter_directory_id(directory)
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("CONTROLLER"))
            .with_host(StrBytes::from_string(host.to_owned()))
            .with_port(port.parse().expect("port"))]);
    let mut connection = Connection::connect(address).await.expect("connect");
    connection
        .send(request, 0)
        .await
        .expect("AddRaftVoter")
        .error_code
}

async fn remove_voter(address: &str, id: i32, directory: Uuid) -> i16 {
    let request = RemoveRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_voter_id(id)
        .with_voter_directory_id(directory);
    let mut connection = Connection::connect(address).await.expect("connect");
    connection
        .send(request, 0)
        .await
        .expect("RemoveRaftVoter")
        .error_code
}

fn batch(value: &str) -> bytes::Bytes {
    let record = OwnedRecord {
        offset: 0,
        timestamp: 0,
        key: None,
        value: Some(value.as_bytes().to_vec().into()),
        headers: Vec::new(),
    };
    encode_batch(&[record], Compression::None).expect("encode")
}

/// Creates `topic` through `address` and produces one record to it, retrying while the
/// cluster settles; panics after `limit`.
async fn create_and_produce(address: &str, topic: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        let attempt = async {
            let mut client = Client::connect(address).await.map_err(|e| e.to_string())?;
            if let Err(e) = client.create_topic(topic, 1, 3, &BTreeMap::new()).await {
                if !e.to_string().contains("already exists") {
                    return Err(e.to_string());
                }
            }
            client
                .produce(topic, 0, batch("after the change"))
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => last = e,
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("creating and producing to {topic} through {address} failed: {last}");
}

fn strata_quorum(bootstrap: &str, args: &[&str]) -> std::process::Output {
    tool::run(&[&["--brokers", bootstrap, "quorum"], args].concat())
}

#[test]
fn voters_are_added_and_removed_at_run_time_and_survive_a_restart() {
    let mut cluster = Cluster::start(3, 0, &[]);
    let seed = cluster.node(1).voters();
    let first_voter = seed
        .split(',')
        .next()
        .and_then(|v| v.split_once('@'))
        .map(|(_, a)| a.to_owned())
        .expect("voter 1");
    let host = "127.0.0.4";
    let endpoint4 = format!("{host}:{}", free_port_on(host));
    cluster.nodes.push(Node::start(NodeOptions {
        node_id: 4,
        host: host.into(),
        voters: Some(seed.clone()),
        args: vec![
            "--controller-listen".into(),
            endpoint4.clone(),
            "--controller-bootstrap-servers".into(),
            first_voter,
        ],
        ..NodeOptions::default()
    }));
    let b1 = cluster.node(1).bootstrap();
    let b2 = cluster.node(2).bootstrap();
    run_bounded(Duration::from_secs(150), async {
        // Node 4 follows the log as an observer: it registers as a broker with the image.
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let before = wait_view(&b1, Duration::from_secs(10), |v| {
            v.observers.get(&4).is_some_and(|d| !d.is_nil())
                && v.voters.len() == 3
                && v.voters.values().all(|d| !d.is_nil())
        })
        .await;
        assert_eq!(before.voters.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(before.endpoints.get(&4), Some(&endpoint4));
        let dir1 = before.voters[&1];

        // Refusals, per KIP-853.
        assert_eq!(
            add_voter(&b1, 2, Uuid::new_v4(), "127.0.0.2:1").await,
            DUPLICATE_VOTER
        );
        assert_eq!(remove_voter(&b1, 1, Uuid::new_v4()).await, VOTER_NOT_FOUND);
        assert_eq!(remove_voter(&b1, 9, Uuid::new_v4()).await, VOTER_NOT_FOUND);
        assert_eq!(
            add_voter(&b1, 4, before.observers[&4], "127.0.0.4:0").await,
            INVALID_REQUEST
        );

        // Add node 4 through the CLI, which looks up its directory id and endpoint.
        let out = strata_quorum(&b2, &["add-voter", "--node-id", "4"]);
        assert!(
            out.status.success(),
            "strata quorum add-voter: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let added = wait_view(&b1, Duration::from_secs(10), |v| v.voters.len() == 4).await;
        assert_eq!(added.voters.get(&4), before.observers.get(&4));
        assert_eq!(added.endpoints.get(&4), Some(&endpoint4));

        // Remove voter 1 with its directory id, then kill it.
        assert_eq!(remove_voter(&b2, 1, dir1).await, 0);
        let removed = wait_view(&b2, Duration::from_secs(10), |v| {
            v.voters.keys().copied().collect::<BTreeSet<_>>() == BTreeSet::from([2, 3, 4])
        })
        .await;
        assert!(!removed.voters.contains_key(&1));
        cluster.node(1).kill();
        // The remaining voters lead and serve metadata changes and produce.
        wait_view(&b2, Duration::from_secs(20), |v| {
            [2, 3, 4].contains(&v.leader) && v.voters.len() == 3
        })
        .await;
        create_and_produce(&b2, "after-removal", Duration::from_secs(30)).await;
        let out = strata_quorum(&b2, &["describe"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains(&endpoint4), "{text}");
    });

    // Restart every remaining node: the membership comes from the Raft log, although
    // --voters still names 1, 2 and 3.
    for id in [2, 3, 4] {
        cluster.node(id).stop();
    }
    for id in [2, 3, 4] {
        cluster.node(id).restart();
    }
    let b3 = cluster.node(3).bootstrap();
    run_bounded(Duration::from_secs(90), async {
        let after = wait_view(&b3, Duration::from_secs(30), |v| {
            [2, 3, 4].contains(&v.leader)
        })
        .await;
        assert_eq!(
            after.voters.keys().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([2, 3, 4])
        );
        assert!(quorum_leader(&b3).await.is_some());
        create_and_produce(&b3, "after-restart", Duration::from_secs(30)).await;
    });
}
