//! `strata`: the server (`strata serve`) and the command-line tools that speak the Kafka
//! protocol to any Kafka-compatible cluster.

mod cli;
mod config_file;
mod logging;
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
    #[command(flatten)]
    brokers: cli::Brokers,
    /// Log lines as text or as JSON objects, one a line (`serve` also reads `log.format`
    /// from its config file) [default: text].
    #[arg(long, global = true, value_enum)]
    log_format: Option<logging::LogFormat>,
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
    /// List and describe transactions, find hanging ones and abort them
    /// (Kafka's kafka-transactions.sh).
    #[command(subcommand)]
    Txn(cli::txn::TxnCommand),
    /// Add, list and remove ACLs (as kafka-acls.sh).
    #[command(subcommand)]
    Acl(cli::acl::AclCommand),
    /// Show the cluster's brokers and controller, and the metadata quorum.
    #[command(subcommand)]
    Cluster(cli::cluster::ClusterCommand),
    /// Describe the metadata quorum and add or remove its voters (KIP-853, as
    /// kafka-metadata-quorum.sh).
    #[command(subcommand)]
    Quorum(cli::quorum::QuorumCommand),
    /// Set and list client quotas of users and client ids.
    #[command(subcommand)]
    Quota(cli::quota::QuotaCommand),
    /// Add, list and remove users' SCRAM credentials (as kafka-configs.sh --entity-type
    /// users).
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Produce lines of standard input as records.
    Produce(cli::produce::ProduceArgs),
    /// Print records of a topic.
    Consume(cli::consume::ConsumeArgs),
    /// Load generator: produce, consume and end-to-end latency figures.
    Bench(cli::bench::BenchCommand),
    /// Jepsen-style check: acknowledged writes survive, once and in order.
    Verify(cli::verify::VerifyArgs),
    /// The configuration reference.
    #[command(subcommand)]
    Config(cli::config::ConfigCommand),
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Command::Serve(serve_args) = args.command {
        // The server starts logging once it has read its config file's `log.format`.
        return runtime.block_on(serve::run(serve_args, args.log_format));
    }
    if let Command::Config(command) = args.command {
        return ignoring_closed_pipe(cli::config::run(command));
    }
    logging::init(args.log_format.unwrap_or_default());
    cli::init_security(args.brokers.command_config.as_deref())?;
    let plain_text = args.brokers.command_config.is_none();
    let brokers = args.brokers.brokers.as_str();
    let result = runtime.block_on(async move {
        match args.command {
            Command::Serve(_) | Command::Config(_) => unreachable!("handled above"),
            Command::Topic(c) => cli::topic::run(c, brokers).await,
            Command::Group(c) => cli::group::run(c, brokers).await,
            Command::Txn(c) => cli::txn::run(c, brokers).await,
            Command::Cluster(c) => cli::cluster::run(c, brokers).await,
            Command::Quota(c) => cli::quota::run(c, brokers).await,
            Command::User(c) => cli::user::run(c, brokers).await,
            Command::Quorum(c) => cli::quorum::run(c, brokers).await,
            Command::Acl(c) => cli::acl::run(c, brokers).await,
            Command::Produce(a) => cli::produce::run(a, brokers).await,
            Command::Consume(a) => cli::consume::run(a, brokers).await,
            Command::Bench(c) => cli::bench::run(c, brokers).await,
            Command::Verify(a) => cli::verify::run(a, brokers).await,
        }
    });
    let result = if plain_text {
        result.map_err(cli::hint_security)
    } else {
        result
    };
    ignoring_closed_pipe(result)
}

/// A reader that stopped early (`strata topic describe t | head`) is not an error.
fn ignoring_closed_pipe(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if cli::is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn brokers_are_accepted_before_and_after_the_subcommand() {
        for argv in [
            &["strata", "-b", "127.0.0.9:1", "topic", "list"][..],
            &["strata", "topic", "-b", "127.0.0.9:1", "list"],
            &["strata", "topic", "list", "--brokers", "127.0.0.9:1"],
            &["strata", "consume", "t", "-b", "127.0.0.9:1"],
        ] {
            let args = Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(args.brokers.brokers, "127.0.0.9:1", "{argv:?}");
        }
    }

    #[test]
    fn serve_help_states_each_default_once() {
        let mut command = <Args as clap::CommandFactory>::command();
        let help = command
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for default in [
            "[default: 1@127.0.0.1:9093, or none with --controller-bootstrap-servers]",
            "[default: broker,controller]",
        ] {
            assert_eq!(help.matches(default).count(), 1, "{default} in:\n{help}");
        }
        for line in help.lines() {
            assert!(line.matches("[default:").count() <= 1, "{line}");
        }
    }
}
