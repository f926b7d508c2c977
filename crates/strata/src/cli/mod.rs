//! Command-line tools that speak the Kafka protocol to any Kafka-compatible cluster.

/// `println!` that returns the write's error (a reader that closed the pipe) instead of
/// panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub(crate) mod acl;
pub(crate) mod bench;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod consume;
pub(crate) mod group;
pub(crate) mod produce;
pub(crate) mod quorum;
pub(crate) mod quota;
pub(crate) mod topic;
pub(crate) mod txn;
pub(crate) mod verify;

/// Where the tools connect: a global option, accepted before or after the subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct Brokers {
    /// Bootstrap brokers of the client commands, HOST:PORT[,HOST:PORT...].
    #[arg(
        short = 'b',
        long = "brokers",
        env = "STRATA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub(crate) brokers: String,
}

/// Parses `key=value`.
pub(crate) fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Whether the error is a write to a pipe whose reader has gone.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
