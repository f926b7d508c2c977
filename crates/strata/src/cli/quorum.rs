//! `strata quorum describe|add-voter|remove-voter`: the metadata quorum (DescribeQuorum) and
//! KIP-853's changes of its voters (AddRaftVoter, RemoveRaftVoter), as
//! `kafka-metadata-quorum.sh describe --replication|add-controller|remove-controller`.

use client::Cluster;
use controller::Uuid;
use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{
    AddRaftVoterRequest, DescribeQuorumResponse, RemoveRaftVoterRequest,
};
use kafka_protocol::protocol::StrBytes;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum QuorumCommand {
    /// Leader, term, high watermark, and each voter's and observer's directory id, log end,
    /// lag and controller endpoint.
    Describe,
    /// Makes a controller a voter (AddRaftVoter). It must run already: started with the
    /// controller role, not in --voters, and controller.quorum.bootstrap.servers, it follows
    /// the quorum as an observer, whose directory id and endpoint are looked up when not
    /// given.
    AddVoter {
        /// The controller's node id.
        #[arg(long)]
        node_id: i32,
        /// Its metadata directory id [default: as the quorum lists the observer].
        #[arg(long)]
        directory_id: Option<Uuid>,
        /// Its controller endpoint, HOST:PORT [default: as the quorum lists the observer].
        #[arg(long)]
        endpoint: Option<String>,
        /// How long the leader waits for it to catch up with the metadata log.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: i32,
    },
    /// Removes a voter (RemoveRaftVoter). The last voter cannot be removed.
    RemoveVoter {
        /// The voter's node id.
        #[arg(long)]
        node_id: i32,
        /// Its metadata directory id [default: as the quorum lists the voter].
        #[arg(long)]
        directory_id: Option<Uuid>,
    },
}

/// DescribeQuorum v2 through any of `brokers`.
async fn describe_quorum(cluster: &mut Cluster) -> anyhow::Result<DescribeQuorumResponse> {
    let request = client::metadata_quorum_request();
    let response = cluster.any().send(request, 2).await?;
    anyhow::ensure!(
        response.error_code == 0,
        "DescribeQuorum failed with error {}{}",
        response.error_code,
        response
            .error_message
            .as_ref()
            .map_or(String::new(), |m| format!(": {}", m.as_str()))
    );
    Ok(response)
}

/// `node_id`'s directory id and controller endpoint as DescribeQuorum lists them.
fn listed(response: &DescribeQuorumResponse, node_id: i32) -> (Option<Uuid>, Option<String>) {
    let partition = response.topics.first().and_then(|t| t.partitions.first());
    let directory = partition.and_then(|p| {
        p.current_voters
            .iter()
            .chain(&p.observers)
            .find(|r| r.replica_id.0 == node_id)
            .map(|r| r.replica_directory_id)
            .filter(|d| !d.is_nil())
    });
    let endpoint = response
        .nodes
        .iter()
        .find(|n| n.node_id.0 == node_id)
        .and_then(|n| n.listeners.first())
        .map(|l| format!("{}:{}", l.host.as_str(), l.port));
    (directory, endpoint)
}

/// Prints the quorum (`strata quorum describe`, `strata cluster quorum`).
pub(crate) async fn describe(brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    let response = describe_quorum(&mut cluster).await?;
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| anyhow::anyhow!("DescribeQuorum answered no partition"))?;
    outln!("LEADER          {}", partition.leader_id.0)?;
    outln!("TERM            {}", partition.leader_epoch)?;
    outln!("HIGH-WATERMARK  {}", partition.high_watermark)?;
    outln!()?;
    outln!(
        "{:<8} {:<8} {:<36} {:<14} {:<8} {:<22} LAST-CONTACT-MS-AGO",
        "NODE",
        "ROLE",
        "DIRECTORY-ID",
        "LOG-END",
        "LAG",
        "ADDRESS"
    )?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let rows = partition
        .current_voters
        .iter()
        .map(|v| ("voter", v))
        .chain(partition.observers.iter().map(|o| ("observer", o)));
    for (role, r) in rows {
        let known = |x: i64| if x < 0 { "-".to_owned() } else { x.to_string() };
        let lag = if r.log_end_offset < 0 {
            "-".to_owned()
        } else {
            (partition.high_watermark - r.log_end_offset)
                .max(0)
                .to_string()
        };
        let contact = if r.last_fetch_timestamp < 0 {
            "-".to_owned()
        } else {
            (now - r.last_fetch_timestamp).max(0).to_string()
        };
        let (_, endpoint) = listed(&response, r.replica_id.0);
        let directory = if r.replica_directory_id.is_nil() {
            "-".to_owned()
        } else {
            r.replica_directory_id.to_string()
        };
        outln!(
            "{:<8} {role:<8} {directory:<36} {:<14} {lag:<8} {:<22} {contact}",
            r.replica_id.0,
            known(r.log_end_offset),
            endpoint.unwrap_or_else(|| "-".to_owned()),
        )?;
    }
    Ok(())
}

fn error_text(code: i16, message: Option<&StrBytes>) -> String {
    let name = kafka_protocol::error::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
    match message {
        Some(m) => format!("{name}: {}", m.as_str()),
        None => name,
    }
}

pub(crate) async fn run(command: QuorumCommand, brokers: &str) -> anyhow::Result<()> {
    match command {
        QuorumCommand::Describe => describe(brokers).await?,
        QuorumCommand::AddVoter {
            node_id,
            directory_id,
            endpoint,
            timeout_ms,
        } => {
            let mut cluster = super::connect(brokers).await?;
            let (listed_directory, listed_endpoint) =
                if directory_id.is_none() || endpoint.is_none() {
                    listed(&describe_quorum(&mut cluster).await?, node_id)
                } else {
                    (None, None)
                };
            let directory_id = directory_id.or(listed_directory).ok_or_else(|| {
                anyhow::anyhow!(
                    "node {node_id} is not an observer of the quorum: give --directory-id, or \
                     start it with controller.quorum.bootstrap.servers first"
                )
            })?;
            let endpoint = endpoint
                .or(listed_endpoint)
                .ok_or_else(|| anyhow::anyhow!("node {node_id}: give --endpoint HOST:PORT"))?;
            let (host, port) = broker::config::split_host_port("--endpoint", &endpoint)?;
            let request = AddRaftVoterRequest::default()
                .with_cluster_id(None)
                .with_timeout_ms(timeout_ms)
                .with_voter_id(node_id)
                .with_voter_directory_id(directory_id)
                .with_listeners(vec![Listener::default()
                    .with_name(StrBytes::from_static_str("CONTROLLER"))
                    .with_host(StrBytes::from(host))
                    .with_port(port)]);
            let response = cluster.any().send(request, 0).await?;
            anyhow::ensure!(
                response.error_code == 0,
                "AddRaftVoter failed: {}",
                error_text(response.error_code, response.error_message.as_ref())
            );
            outln!("Added KRaft controller {node_id} with directory id {directory_id}")?;
        }
        QuorumCommand::RemoveVoter {
            node_id,
            directory_id,
        } => {
            let mut cluster = super::connect(brokers).await?;
            let directory_id = match directory_id {
                Some(d) => d,
                None => listed(&describe_quorum(&mut cluster).await?, node_id)
                    .0
                    .unwrap_or_default(),
            };
            let request = RemoveRaftVoterRequest::default()
                .with_cluster_id(None)
                .with_voter_id(node_id)
                .with_voter_directory_id(directory_id);
            let response = cluster.any().send(request, 0).await?;
            anyhow::ensure!(
                response.error_code == 0,
                "RemoveRaftVoter failed: {}",
                error_text(response.error_code, response.error_message.as_ref())
            );
            outln!("Removed KRaft controller {node_id} with directory id {directory_id}")?;
        }
    }
    Ok(())
}
