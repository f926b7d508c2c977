//! `strata`: the server (`strata serve`) and the command-line tools that speak the Kafka
//! protocol to any Kafka-compatible cluster.

mod cli;
mod config_file;
mod metrics_http;
mod serve;

use clap::{Parser, Subcommand};

/// mimalloc keeps freed memory for reuse: with the system allocator every large produce
/// request lands in fresh pages that the kernel must fault in and zero, which cost a third of
/// the produce path's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "A Kafka-compatible commit log in one binary"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Strata node (broker and controller).
    Serve(serve::ServeArgs),
    /// Create, list, describe, delete and configure topics.
    #[command(subcommand)]
    Topic(cli::topic::TopicCommand),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(cli::group::GroupCommand),
    /// Show the cluster's brokers and controller, and the metadata quorum.
    #[command(subcommand)]
    Cluster(cli::cluster::ClusterCommand),
    /// Produce lines of standard input as records.
    Produce(cli::produce::ProduceArgs),
    /// Print records of a topic.
    Consume(cli::consume::ConsumeArgs),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match args.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Topic(c) => cli::topic::run(c).await,
            Command::Group(c) => cli::group::run(c).await,
            Command::Cluster(c) => cli::cluster::run(c).await,
            Command::Produce(a) => cli::produce::run(a).await,
            Command::Consume(a) => cli::consume::run(a).await,
        }
    })
}
