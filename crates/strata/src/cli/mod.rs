//! Command-line tools that speak the Kafka protocol to any Kafka-compatible cluster.

pub(crate) mod cluster;
pub(crate) mod consume;
pub(crate) mod group;
pub(crate) mod produce;
pub(crate) mod topic;

/// Where the tools connect.
#[derive(Debug, clap::Args)]
pub(crate) struct Brokers {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(
        short = 'b',
        long = "brokers",
        env = "STRATA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub(crate) brokers: String,
}

/// Parses `key=value`.
pub(crate) fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}
