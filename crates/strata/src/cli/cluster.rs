//! `strata cluster info|quorum`: the cluster's brokers and controller (DescribeCluster),
//! and the metadata quorum's voters, leader and lag (DescribeQuorum).

use std::time::{Duration, Instant};

use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClusterCommand {
    /// Cluster id, controller and live brokers.
    Info {
        /// Keep asking for up to this many seconds until the cluster answers (and, with
        /// --expect-brokers, until that many brokers are live); for scripts that start nodes.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
        /// With --wait: the number of live brokers to wait for.
        #[arg(long, value_name = "N", requires = "wait")]
        expect_brokers: Option<usize>,
    },
    /// The metadata quorum (as `strata quorum describe`).
    Quorum,
}

/// One DescribeCluster through any of `brokers`.
async fn describe_cluster(brokers: &str) -> anyhow::Result<DescribeClusterResponse> {
    let mut cluster = super::connect(brokers).await?;
    let response = cluster
        .any()
        .send(DescribeClusterRequest::default(), 1)
        .await?;
    anyhow::ensure!(
        response.error_code == 0,
        "DescribeCluster failed with error {}",
        response.error_code
    );
    Ok(response)
}

/// Asks every 250 ms until the cluster answers with at least `brokers_live` brokers, or
/// fails with the last error once `limit` has passed.
async fn wait_for_cluster(
    brokers: &str,
    limit: Duration,
    brokers_live: usize,
) -> anyhow::Result<DescribeClusterResponse> {
    let deadline = Instant::now() + limit;
    loop {
        let attempt = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            describe_cluster(brokers),
        )
        .await;
        let failure = match attempt {
            Ok(Ok(response)) if response.brokers.len() >= brokers_live => return Ok(response),
            Ok(Ok(response)) => {
                anyhow::anyhow!("{} of {brokers_live} brokers live", response.brokers.len())
            }
            Ok(Err(e)) => e,
            Err(_) => anyhow::anyhow!("no answer"),
        };
        if Instant::now() + Duration::from_millis(250) >= deadline {
            anyhow::bail!("cluster not ready after {}s: {failure:#}", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) async fn run(command: ClusterCommand, brokers: &str) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Info {
            wait,
            expect_brokers,
        } => {
            let response = match wait {
                None => describe_cluster(brokers).await?,
                Some(seconds) => {
                    wait_for_cluster(
                        brokers,
                        Duration::from_secs(seconds),
                        expect_brokers.unwrap_or(1),
                    )
                    .await?
                }
            };
            outln!("CLUSTER-ID  {}", response.cluster_id.as_str())?;
            outln!("CONTROLLER  {}", response.controller_id.0)?;
            outln!()?;
            outln!("{:<8} {:<30} RACK", "BROKER", "ENDPOINT")?;
            for b in &response.brokers {
                let rack = b.rack.as_ref().map_or("-", |r| r.as_str());
                let endpoint = format!("{}:{}", b.host.as_str(), b.port);
                outln!("{:<8} {endpoint:<30} {rack}", b.broker_id.0)?;
            }
        }
        ClusterCommand::Quorum => super::quorum::describe(brokers).await?,
    }
    Ok(())
}
