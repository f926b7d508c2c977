//! The metadata quorum seen through the Kafka protocol.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use client::Cluster as Client;
use strata_tests::cluster::{live_brokers, quorum_leader, Cluster};
use strata_tests::run_bounded;

/// Each node's view of `topic`: (topic id, per-partition (leader, replicas)).
async fn topic_view(address: &str, topic: &str) -> Option<(String, Vec<(i32, Vec<i32>)>)> {
    let mut client = tokio::time::timeout(Duration::from_secs(2), Client::connect(address))
        .await
        .ok()?
        .ok()?;
    let topics = client.metadata(Some(&[topic]), false).await.ok()?;
    let t = topics.into_iter().find(|t| t.name == topic)?;
    if t.partitions.is_empty() {
        return None;
    }
    Some((
        t.topic_id,
        t.partitions
            .into_iter()
            .map(|p| (p.leader, p.replicas))
            .collect(),
    ))
}

/// Every topic `address` lists, name → id.
async fn topic_ids(address: &str) -> BTreeMap<String, String> {
    let mut client = Client::connect(address).await.expect("connect");
    client
        .metadata(None, false)
        .await
        .expect("metadata")
        .into_iter()
        .map(|t| (t.name, t.topic_id))
        .collect()
}

#[test]
fn three_nodes_converge_and_any_node_creates_topics() {
    let mut cluster = Cluster::start(3, 1, &[]);
    run_bounded(Duration::from_secs(60), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        // CreateTopics on a broker-only node, forwarded to the quorum's leader.
        let mut client = Client::connect(&cluster.node(4).bootstrap()).await.unwrap();
        client
            .create_topic("spread", 8, 3, &BTreeMap::new())
            .await
            .expect("create on node 4");
        // Every node answers the same topic id, leaders and replicas.
        let mut views = Vec::new();
        for node in &cluster.nodes {
            let deadline = Instant::now() + Duration::from_secs(5);
            let view = loop {
                if let Some(view) = topic_view(&node.bootstrap(), "spread").await {
                    break view;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} never saw the topic",
                    node.node_id()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            views.push(view);
        }
        assert!(
            views.windows(2).all(|w| w[0] == w[1]),
            "views differ: {views:?}"
        );
        // Leaders spread evenly over the four brokers; replicas on distinct brokers.
        let mut led: BTreeMap<i32, usize> = BTreeMap::new();
        for (leader, replicas) in &views[0].1 {
            *led.entry(*leader).or_default() += 1;
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
            assert_eq!(replicas[0], *leader, "the preferred replica leads");
        }
        assert_eq!(
            led.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2, 2],
            "{led:?}"
        );
        // More replicas than live brokers: INVALID_REPLICATION_FACTOR, on any node.
        let mut client = Client::connect(&cluster.node(2).bootstrap()).await.unwrap();
        let error = client
            .create_topic("too-wide", 1, 5, &BTreeMap::new())
            .await
            .expect_err("replication factor 5 on 4 brokers");
        assert!(error.to_string().contains("Kafka error 38"), "{error}");
        // The same controller id and quorum leader everywhere.
        let mut leaders = BTreeSet::new();
        for node in &cluster.nodes {
            leaders.insert(
                quorum_leader(&node.bootstrap())
                    .await
                    .expect("quorum answer"),
            );
        }
        assert_eq!(leaders.len(), 1, "{leaders:?}");
    });
}

#[test]
fn killing_the_metadata_leader_during_create_topics_loses_nothing() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(120), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let bootstrap = cluster.bootstrap();
        // A stream of CreateTopics through every node in turn; `acked` are the ones
        // answered with success (or TOPIC_ALREADY_EXISTS after a retry: the first try
        // committed but its answer was lost).
        let addresses: Vec<String> = bootstrap.split(',').map(str::to_owned).collect();
        let creator = tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..60 {
                let name = format!("stream-{i:03}");
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut attempt = 0usize;
                loop {
                    let address = &addresses[(i + attempt) % addresses.len()];
                    attempt += 1;
                    let result = async {
                        let mut client = Client::connect(address).await?;
                        client.create_topic(&name, 1, 1, &BTreeMap::new()).await
                    };
                    match tokio::time::timeout(Duration::from_secs(12), result).await {
                        Ok(Ok(())) => break acked.push(name),
                        Ok(Err(e)) if e.to_string().contains("Kafka error 36") && attempt > 1 => {
                            break acked.push(name)
                        }
                        _ => {}
                    }
                    assert!(Instant::now() < deadline, "topic {name} was never created");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acked
        });
        // Let some topics through, then kill -9 the leader.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (old_leader, old_term) = quorum_leader(&cluster.node(1).bootstrap())
            .await
            .expect("a leader");
        cluster.node(old_leader).kill();
        let killed_at = Instant::now();
        let survivor = if old_leader == 1 { 2 } else { 1 };
        let elected = loop {
            if let Some((leader, term)) = quorum_leader(&cluster.node(survivor).bootstrap()).await {
                if leader != old_leader && term > old_term {
                    break killed_at.elapsed();
                }
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(10),
                "no new leader"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!("new metadata leader after kill -9 in {elected:?}");
        assert!(
            elected < Duration::from_secs(2),
            "election took {elected:?}"
        );
        let acked = creator.await.expect("creator");
        assert_eq!(acked.len(), 60);
        // The killed node rejoins and catches up; every node then lists every
        // acknowledged topic exactly once, with the same id.
        cluster.node(old_leader).restart();
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut views = Vec::new();
        for node in &cluster.nodes {
            let view = loop {
                let view = topic_ids(&node.bootstrap()).await;
                if acked.iter().all(|t| view.contains_key(t)) {
                    break view;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} is missing topics",
                    node.node_id()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            views.push(view);
        }
        assert!(
            views.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree on topics"
        );
        let ids: BTreeSet<&String> = views[0].values().collect();
        assert_eq!(ids.len(), views[0].len(), "a topic id appears twice");
    });
}

#[test]
fn a_killed_broker_is_fenced_and_loses_its_leaderships() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(60), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let mut client = Client::connect(&cluster.node(1).bootstrap()).await.unwrap();
        client
            .create_topic("fenced", 6, 3, &BTreeMap::new())
            .await
            .unwrap();
        // Kill a broker that is not the metadata leader, so only its lease matters.
        let (leader, _) = quorum_leader(&cluster.node(1).bootstrap()).await.unwrap();
        let victim = if leader == 3 { 2 } else { 3 };
        let watcher = if leader == 1 { leader } else { 1 };
        let address = cluster.node(watcher).bootstrap();
        let before = topic_view(&address, "fenced").await.unwrap();
        assert!(before.1.iter().any(|(l, _)| *l == victim));
        cluster.node(victim).kill();
        let killed_at = Instant::now();
        let moved = loop {
            let brokers = live_brokers(&address).await.unwrap_or_default();
            let view = topic_view(&address, "fenced").await;
            let leads = view
                .as_ref()
                .is_some_and(|v| v.1.iter().any(|(l, _)| *l == victim));
            if !brokers.contains(&victim) && view.is_some() && !leads {
                break killed_at.elapsed();
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(15),
                "broker {victim} never fenced"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        eprintln!("partitions of a killed broker moved in {moved:?}");
        assert!(
            moved < Duration::from_secs(3),
            "moving leaders took {moved:?}"
        );
        let after = topic_view(&address, "fenced").await.unwrap();
        assert!(
            after.1.iter().all(|(l, _)| *l != victim && *l >= 0),
            "{after:?}"
        );
        // It comes back: registered and unfenced again.
        cluster.node(victim).restart();
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
    });
}

#[test]
fn a_voter_that_missed_purged_entries_catches_up_from_a_snapshot() {
    // Snapshots every 20 entries, so the leader purges what the stopped voter lacks.
    let mut cluster = Cluster::start(3, 0, &[("metadata.snapshot.interval.records", "20")]);
    run_bounded(Duration::from_secs(90), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        cluster.node(3).kill();
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let address = cluster.node(1).bootstrap();
        let mut client = Client::connect(&address).await.unwrap();
        for i in 0..5 {
            client
                .create_topic(&format!("while-down-{i}"), 2, 2, &BTreeMap::new())
                .await
                .unwrap();
        }
        for i in 0..250 {
            let change = [("retention.ms".to_owned(), Some((60_000 + i).to_string()))];
            client
                .alter_topic_configs("while-down-0", &change.into_iter().collect())
                .await
                .unwrap();
        }
        cluster.node(3).restart();
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let leader_view = topic_ids(&address).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let rejoined = cluster.node(3).bootstrap();
        loop {
            let mut client = Client::connect(&rejoined).await.unwrap();
            let configs = client
                .describe_topic_configs("while-down-0")
                .await
                .unwrap_or_default();
            let retention = configs
                .iter()
                .find(|(name, _, _)| name == "retention.ms")
                .and_then(|(_, value, _)| value.clone());
            if topic_ids(&rejoined).await == leader_view && retention.as_deref() == Some("60249") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node 3 did not catch up: {retention:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            cluster
                .node(3)
                .log()
                .contains("metadata snapshot installed"),
            "node 3 caught up without a snapshot:\n{}",
            cluster.node(3).log()
        );
    });
}

/// The controller id `address` names in Metadata and in DescribeCluster.
async fn named_controllers(address: &str) -> (i32, i32) {
    use kafka_protocol::messages::{DescribeClusterRequest, MetadataRequest};
    let mut connection = client::Connection::connect(address).await.expect("connect");
    let metadata = connection
        .send(MetadataRequest::default().with_topics(Some(vec![])), 12)
        .await
        .expect("Metadata");
    let cluster = connection
        .send(DescribeClusterRequest::default(), 1)
        .await
        .expect("DescribeCluster");
    (metadata.controller_id.0, cluster.controller_id.0)
}

#[test]
fn every_broker_names_itself_controller_and_admin_requests_survive_the_leader_s_death() {
    use rdkafka::admin::{
        AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
        TopicReplication,
    };
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;

    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(90), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        for node in &cluster.nodes {
            let id = node.node_id();
            assert_eq!(
                named_controllers(&node.bootstrap()).await,
                (id, id),
                "node {id} names itself in Metadata and DescribeCluster"
            );
        }
        let (leader, _) = quorum_leader(&cluster.node(1).bootstrap())
            .await
            .expect("a metadata leader");
        let survivor = if leader == 1 { 2 } else { 1 };
        // An admin client that learnt the controller before the leader died.
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", cluster.node(survivor).bootstrap())
            .create()
            .expect("admin client");
        let options = AdminOptions::new()
            .request_timeout(Some(Duration::from_secs(30)))
            .operation_timeout(Some(Duration::from_secs(30)));
        fn created(name: &str) -> NewTopic<'_> {
            NewTopic::new(name, 3, TopicReplication::Fixed(1))
        }
        let results = admin
            .create_topics(&[created("before")], &options)
            .await
            .expect("CreateTopics");
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        cluster.node(leader).kill();
        let killed_at = Instant::now();
        let results = admin
            .create_topics(&[created("after")], &options)
            .await
            .expect("CreateTopics");
        let took = killed_at.elapsed();
        eprintln!("CreateTopics after kill -9 of the metadata leader: {took:?}");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(
            took < Duration::from_secs(10),
            "CreateTopics took {took:?} after the metadata leader died"
        );
        // What else a client sends to "the controller" works at the surviving broker.
        let results = admin
            .create_partitions(&[NewPartitions::new("after", 4)], &options)
            .await
            .expect("CreatePartitions");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let results = admin
            .alter_configs(
                &[AlterConfig::new(ResourceSpecifier::Topic("after"))
                    .set("retention.ms", "3600000")],
                &options,
            )
            .await
            .expect("AlterConfigs");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let results = admin
            .delete_topics(&["before"], &options)
            .await
            .expect("DeleteTopics");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let survivor_address = cluster.node(survivor).bootstrap();
        assert_eq!(
            named_controllers(&survivor_address).await,
            (survivor, survivor)
        );
    });
}
