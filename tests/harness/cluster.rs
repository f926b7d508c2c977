//! Several `strata serve` processes forming one cluster: node `i` listens on `127.0.0.i`
//! (Kafka and controller ports chosen free), the first `voters` nodes vote in the metadata
//! quorum and every node is a broker.

use std::time::{Duration, Instant};

use crate::{free_port_on, Node, NodeOptions};

/// A running cluster; nodes are numbered from 1.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, `nodes[i]` being node `i + 1`.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `voters` voting nodes and `brokers_only` broker-only nodes, each with
    /// `properties`, and waits until each accepts Kafka connections.
    pub fn start(voters: usize, brokers_only: usize, properties: &[(&str, &str)]) -> Cluster {
        Cluster::start_configured(voters, brokers_only, |mut options| {
            for (k, v) in properties {
                options = options.property(k, v);
            }
            options
        })
    }

    /// As [`Cluster::start`], each node's options (id, host, voters, roles and, for a
    /// voter, controller port set) passed through `configure` before the node starts, in
    /// node order.
    pub fn start_configured(
        voters: usize,
        brokers_only: usize,
        mut configure: impl FnMut(NodeOptions) -> NodeOptions,
    ) -> Cluster {
        let hosts: Vec<String> = (1..=voters + brokers_only)
            .map(|i| format!("127.0.0.{i}"))
            .collect();
        let controller_ports: Vec<u16> = hosts[..voters].iter().map(|h| free_port_on(h)).collect();
        let voter_list: Vec<String> = (0..voters)
            .map(|i| format!("{}@{}:{}", i + 1, hosts[i], controller_ports[i]))
            .collect();
        let voter_list = voter_list.join(",");
        let nodes = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                Node::start(configure(NodeOptions {
                    node_id: i as i32 + 1,
                    host: host.clone(),
                    voters: Some(voter_list.clone()),
                    controller_port: controller_ports.get(i).copied(),
                    roles: (i >= voters).then(|| "broker".to_owned()),
                    ..NodeOptions::default()
                }))
            })
            .collect();
        Cluster { nodes }
    }

    /// Starts `voters` voting nodes, node `i` in namespace `i` of `net` at its address there
    /// (ports 9092 and 9093), each with `properties`. The controller port there is not
    /// loopback and runs without TLS (`controller.allow.plaintext=true`): the namespaces'
    /// network is private to the test.
    pub fn start_in(
        net: &crate::netns::Network,
        voters: usize,
        properties: &[(&str, &str)],
    ) -> Cluster {
        let voter_list: Vec<String> = (1..=voters)
            .map(|i| format!("{i}@{}:9093", net.node_ip(i)))
            .collect();
        let voter_list = voter_list.join(",");
        let nodes = (1..=voters)
            .map(|i| {
                let mut options = NodeOptions {
                    node_id: i as i32,
                    host: net.node_ip(i),
                    voters: Some(voter_list.clone()),
                    controller_port: Some(9093),
                    port: Some(9092),
                    netns: Some(net.namespace(i)),
                    ..NodeOptions::default()
                }
                .property("controller.allow.plaintext", "true");
                for (k, v) in properties {
                    options = options.property(k, v);
                }
                Node::start(options)
            })
            .collect();
        Cluster { nodes }
    }

    /// Node `id` (1-based).
    pub fn node(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    /// Comma-separated Kafka addresses of the running nodes.
    pub fn bootstrap(&mut self) -> String {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.is_running().then(|| n.bootstrap()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until every running node's Metadata lists exactly the running nodes as
    /// brokers. Panics after `limit`.
    pub async fn wait_for_brokers(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut running: Vec<i32> = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.is_running().then(|| n.node_id()))
            .collect();
        running.sort_unstable();
        loop {
            let mut all = true;
            for node in self.nodes.iter_mut() {
                if !node.is_running() {
                    continue;
                }
                let listed = live_brokers(&node.bootstrap()).await;
                if listed.as_ref() != Some(&running) {
                    all = false;
                    break;
                }
            }
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "brokers {running:?} not listed by every node within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The brokers `address` lists in Metadata, sorted (`None` when it does not answer).
pub async fn live_brokers(address: &str) -> Option<Vec<i32>> {
    let request = kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![]));
    let response = bounded(async {
        let mut connection = client::Connection::connect(address).await.ok()?;
        connection.send(request, 12).await.ok()
    })
    .await?;
    let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    Some(ids)
}

/// The metadata quorum's leader and term as `address` reports them (DescribeQuorum).
pub async fn quorum_leader(address: &str) -> Option<(i32, i32)> {
    let request = client::metadata_quorum_request();
    let response = bounded(async {
        let mut connection = client::Connection::connect(address).await.ok()?;
        connection.send(request, 1).await.ok()
    })
    .await?;
    let partition = response.topics.first()?.partitions.first()?;
    (response.error_code == 0 && partition.leader_id.0 >= 0)
        .then_some((partition.leader_id.0, partition.leader_epoch))
}

/// `f`, or `None` when it takes over two seconds (a paused node never answers).
async fn bounded<T>(f: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(2), f)
        .await
        .ok()
        .flatten()
}

impl Drop for Cluster {
    /// On a failed test, each node prints its whole log as it goes; then the warnings and
    /// errors of all of them, last, so the end of a long output tells what went wrong.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let warnings: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(i, node)| {
                node.log()
                    .lines()
                    .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                    .map(|l| format!("node {}: {l}", i + 1))
                    .collect::<Vec<_>>()
            })
            .collect();
        self.nodes.clear();
        eprintln!(
            "--- warnings and errors of every node ({}) ---",
            warnings.len()
        );
        for line in warnings.iter().rev().take(60).rev() {
            eprintln!("{line}");
        }
    }
}
