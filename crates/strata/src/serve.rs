//! `strata serve`: one node of a cluster: a metadata voter (controller), a broker, or both
//! (the default, and a single node with no flags is a whole cluster).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker::{Broker, BrokerConfig};
use controller::{Controller, ControllerOptions};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::logging::LogFormat;

/// How long a clean stop may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);
/// How long a stopping broker waits for the quorum to move its leaderships elsewhere.
const CONTROLLED_SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Kafka properties (`log.dirs`, `num.partitions`, ...): TOML, or Kafka's
    /// `server.properties` format (`key=value`); flags override it. Unknown keys are warned
    /// about; TLS, SASL and other settings Strata does not serve stop the start.
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
    /// Address the controller (Raft and broker registration) binds [default: this node's
    /// entry in --voters].
    #[arg(long)]
    controller_listen: Option<String>,
    /// Serve the controller port without TLS even on an address other than loopback
    /// (`controller.allow.plaintext=true`): only on a network where every host that can
    /// reach the port is trusted.
    #[arg(long)]
    controller_allow_plaintext: bool,
    /// The metadata quorum's seed voters, ID@HOST:PORT,... (`controller.quorum.voters`):
    /// the quorum's first membership; once formed, the membership lives in the Raft log and
    /// changes with AddRaftVoter/RemoveRaftVoter [default: 1@127.0.0.1:9093, or none with
    /// --controller-bootstrap-servers].
    #[arg(long)]
    voters: Option<String>,
    /// Controller addresses to reach the quorum through, HOST:PORT,...
    /// (`controller.quorum.bootstrap.servers`). A node with the controller role that is not
    /// in --voters joins as an observer through them and can then be added as a voter.
    #[arg(long)]
    controller_bootstrap_servers: Option<String>,
    /// What this node does: broker, controller, or both.
    #[arg(long, value_delimiter = ',', default_value = "broker,controller")]
    roles: Vec<Role>,
    /// HOST:PORT of the HTTP endpoint for /metrics, /health and /ready (`metrics.listen`)
    /// [default: none].
    #[arg(long)]
    metrics_listen: Option<String>,
}

/// A role of a node (Kafka's `process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    /// Serves the Kafka protocol and hosts partitions.
    Broker,
    /// Votes in the metadata quorum.
    Controller,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and sizes the segment store's cache of
/// open files and mappings (and so the partition count this node accepts) from the result
/// and `vm.max_map_count`.
fn install_resource_budget() {
    if let Err(e) = segment_store::raise_open_files_limit() {
        tracing::warn!(error = %e, "could not raise the open files limit to the hard limit");
    }
    let budget = segment_store::ResourceBudget::from_system();
    segment_store::set_budget(budget);
    tracing::info!(
        open_files_limit = budget.open_files_limit,
        max_map_count = budget.max_map_count,
        log_open_files = budget.open_files,
        log_mappings = budget.mappings,
        max_partitions = budget.max_partitions(),
        "resource budget"
    );
}

/// The controller half of a node, from the flags.
async fn controller_options(
    args: &ServeArgs,
    config: &BrokerConfig,
    bootstrap_servers: Option<&str>,
) -> anyhow::Result<ControllerOptions> {
    let node_id = config.node_id;
    let voters_text = match (&args.voters, bootstrap_servers) {
        (Some(text), _) => text.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => "1@127.0.0.1:9093".to_owned(),
    };
    let mut voters = if voters_text.is_empty() {
        Default::default()
    } else {
        controller::parse_voters(&voters_text)
            .map_err(|e| anyhow::anyhow!("--voters {voters_text}: {e}"))?
    };
    let voting = args.roles.contains(&Role::Controller);
    let in_voters = voters.contains_key(&node_id);
    if !voting && in_voters {
        anyhow::bail!(
            "node {node_id} is in --voters {voters_text} but its roles are {:?}",
            args.roles
        );
    }
    let observer = voting && !in_voters;
    if observer && bootstrap_servers.is_none() {
        anyhow::bail!(
            "node {node_id} has the controller role but is not in --voters {voters_text}: give \
             controller.quorum.bootstrap.servers (or --controller-bootstrap-servers) to join \
             the quorum as an observer, then add it with `strata quorum add-voter`"
        );
    }
    // Bootstrap servers have no ids: they are kept as negative pseudo ids, only to be asked
    // who leads.
    for (i, address) in bootstrap_servers
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .enumerate()
    {
        broker::config::split_host_port("controller.quorum.bootstrap.servers", address)?;
        if !voters.values().any(|v| v == address) {
            voters.insert(-(i as i32) - 1, address.to_owned());
        }
    }
    if voters.is_empty() {
        anyhow::bail!("no voters: give --voters or controller.quorum.bootstrap.servers");
    }
    let listen = match (voting, &args.controller_listen) {
        (false, _) => None,
        (true, Some(addr)) => Some(addr.clone()),
        (true, None) if observer => {
            anyhow::bail!("an observer controller needs --controller-listen HOST:PORT")
        }
        (true, None) => voters.get(&node_id).cloned(),
    };
    let listen = match listen {
        Some(addr) => Some(
            tokio::net::lookup_host(&addr)
                .await
                .with_context(|| format!("resolving the controller address {addr}"))?
                .next()
                .with_context(|| format!("{addr} resolves to no address"))?,
        ),
        None => None,
    };
    let mut options =
        ControllerOptions::new(node_id, config.data_dir.join("metadata"), voters, listen);
    options.broker_heartbeat_interval = Duration::from_millis(config.broker_heartbeat_interval_ms);
    options.broker_session_timeout = Duration::from_millis(config.broker_session_timeout_ms);
    options.snapshot_every = config.metadata_snapshot_interval_records;
    options.tls = config.controller_tls.clone();
    options.allow_plaintext = config.controller_allow_plaintext || args.controller_allow_plaintext;
    options.observer = observer;
    Ok(options)
}

/// Runs the node; logging starts once the config file's `log.format` is known (the
/// `--log-format` flag wins over it).
pub(crate) async fn run(args: ServeArgs, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut config = BrokerConfig::default();
    let mut props = match &args.config {
        Some(path) => crate::config_file::read(path)?,
        None => Default::default(),
    };
    // Strata's own key, read here rather than by the broker.
    let file_format = match props.remove("log.format") {
        Some(value) => Some(LogFormat::from_property(&value)?),
        None => None,
    };
    let bootstrap_servers = args
        .controller_bootstrap_servers
        .clone()
        .or_else(|| props.remove("controller.quorum.bootstrap.servers"))
        .filter(|s| !s.trim().is_empty());
    crate::logging::init(log_format.or(file_format).unwrap_or_default());
    if let Some(path) = &args.config {
        for unknown in broker::config::unknown_properties(&props) {
            tracing::warn!(
                key = %unknown.key,
                suggestion = unknown.suggestion,
                config = %path.display(),
                "{unknown}"
            );
        }
        config
            .apply_properties(&props)
            .with_context(|| format!("in {}", path.display()))?;
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(dir) = args.data_dir.clone() {
        config.data_dir = dir;
    }
    if let Some(listen) = &args.listen {
        let bind = tokio::net::lookup_host(listen)
            .await
            .with_context(|| format!("resolving --listen {listen}"))?
            .next()
            .with_context(|| format!("--listen {listen} resolves to no address"))?;
        let advertise = match &args.advertise {
            Some(advertise) => broker::config::split_host_port("--advertise", advertise)?,
            None => broker::config::split_host_port("--listen", listen)?,
        };
        config.set_first_listener(Some(bind), advertise);
    } else if let Some(advertise) = &args.advertise {
        let advertise = broker::config::split_host_port("--advertise", advertise)?;
        config.set_first_listener(None, advertise);
    }
    if let Some(addr) = &args.metrics_listen {
        if !addr.is_empty() {
            broker::config::split_host_port("--metrics-listen", addr)?;
        }
        config.metrics_listen = (!addr.is_empty()).then(|| addr.clone());
    }
    // Before anything reads or writes the directory: a second process on it would corrupt
    // the first one's logs.
    let _data_dir_lock = segment_store::DirLock::acquire(&config.data_dir)?;
    install_resource_budget();
    let metrics = Arc::new(crate::metrics_http::NodeState::default());
    if let Some(addr) = &config.metrics_listen {
        let bound = crate::metrics_http::start(addr, Arc::clone(&metrics)).await?;
        tracing::info!(metrics_listen = %bound, "serving /metrics, /health and /ready");
    }
    let options = controller_options(&args, &config, bootstrap_servers.as_deref()).await?;
    // The controller port's and the inter-broker client's TLS follow their files.
    tokio::spawn(broker::config::watch_tls(
        config.live_tls.clone(),
        std::future::pending(),
    ));
    let controller = Controller::start(options)
        .await
        .context("starting the controller")?;
    metrics.set_controller(&controller);
    if !args.roles.contains(&Role::Broker) {
        metrics.set_serving(true);
        tracing::info!(
            node_id = config.node_id,
            startup_ms = started.elapsed().as_millis() as u64,
            "strata controller is serving"
        );
        wait_for_signal().await?;
        metrics.set_serving(false);
        controller.shutdown().await;
        return Ok(());
    }
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        let socket = TcpListener::bind(listener.bind)
            .await
            .with_context(|| format!("binding listener {} on {}", listener.name, listener.bind))?;
        listeners.push((listener.clone(), socket));
    }
    let bound: Vec<String> = listeners
        .iter()
        .map(|(l, socket)| {
            let addr = socket
                .local_addr()
                .map_or_else(|_| l.bind.to_string(), |a| a.to_string());
            format!("{}://{addr}", l.name)
        })
        .collect();
    let opening = controller.clone();
    let broker = tokio::task::spawn_blocking(move || Broker::open(config, opening)).await??;
    broker.spawn_background_tasks();
    metrics.set_broker(&broker);
    tracing::info!(
        node_id = broker_node(&broker),
        listen = %bound.join(","),
        startup_ms = started.elapsed().as_millis() as u64,
        "strata is serving"
    );
    let draining = Arc::clone(&broker);
    let draining_metrics = Arc::clone(&metrics);
    let stop = async move {
        let signalled = wait_for_signal().await;
        draining_metrics.set_serving(false);
        // Hand leaderships over while clients can still be told where they went.
        draining
            .controlled_shutdown(CONTROLLED_SHUTDOWN_LIMIT)
            .await;
        signalled
    };
    tokio::pin!(stop);
    // Like Kafka, answer clients only once this broker is registered: before that its
    // Metadata would list no brokers and no controller. Connections made meanwhile wait in
    // the listener's backlog.
    let registered = broker.wait_ready();
    tokio::select! {
        () = registered => {
            tracing::info!(wait_ms = started.elapsed().as_millis() as u64, "broker registered; serving clients");
            metrics.set_serving(true);
            broker::serve(Arc::clone(&broker), listeners, async move {
                let _ = stop.await;
            })
            .await;
        }
        _ = &mut stop => {}
    }
    tracing::info!("stopping");
    let stopping = tokio::task::spawn_blocking(move || broker.shutdown());
    let stopped = tokio::time::timeout(SHUTDOWN_LIMIT, stopping).await;
    controller.shutdown().await;
    match stopped {
        Ok(result) => result??,
        Err(_) => anyhow::bail!("clean shutdown took longer than {SHUTDOWN_LIMIT:?}"),
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

fn broker_node(broker: &Broker) -> i32 {
    broker.node_id()
}
