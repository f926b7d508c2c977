//! `strata serve`: one node, broker and controller at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker::{Broker, BrokerConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// How long a clean stop may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// TOML file of Kafka properties (`log.dirs`, `num.partitions`, ...); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id.
    #[arg(long)]
    node_id: Option<i32>,
    /// Where logs and metadata live [default: ./strata-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address the Kafka listener binds [default: 127.0.0.1:9092].
    #[arg(long)]
    listen: Option<String>,
    /// HOST:PORT given to clients [default: the listen address].
    #[arg(long)]
    advertise: Option<String>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut config = BrokerConfig::default();
    if let Some(path) = &args.config {
        config.apply_properties(&crate::config_file::read(path)?)?;
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(listen) = &args.listen {
        config.listen = tokio::net::lookup_host(listen)
            .await
            .with_context(|| format!("resolving --listen {listen}"))?
            .next()
            .with_context(|| format!("--listen {listen} resolves to no address"))?;
        if args.advertise.is_none() {
            config.advertise = broker::config::split_host_port("--listen", listen)?;
        }
    }
    if let Some(advertise) = &args.advertise {
        config.advertise = broker::config::split_host_port("--advertise", advertise)?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let broker = tokio::task::spawn_blocking(move || Broker::open(config)).await??;
    broker.spawn_background_tasks();
    tracing::info!(
        node_id = broker_node(&broker),
        listen = %listener.local_addr()?,
        startup_ms = started.elapsed().as_millis() as u64,
        "strata is serving"
    );
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    broker::serve(Arc::clone(&broker), listener, stop).await;
    tracing::info!("stopping");
    let stopping = tokio::task::spawn_blocking(move || broker.shutdown());
    match tokio::time::timeout(SHUTDOWN_LIMIT, stopping).await {
        Ok(result) => result??,
        Err(_) => anyhow::bail!("clean shutdown took longer than {SHUTDOWN_LIMIT:?}"),
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

fn broker_node(broker: &Broker) -> i32 {
    broker.node_id()
}
