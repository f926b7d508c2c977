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
pub(crate) mod user;
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
    /// A Kafka client properties file (as Kafka's tools' `--command-config`):
    /// `security.protocol`, PEM `ssl.truststore.*` and `ssl.keystore.*`, `sasl.mechanism`
    /// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and `sasl.jaas.config` with username and
    /// password.
    #[arg(long = "command-config", value_name = "FILE", global = true)]
    pub(crate) command_config: Option<std::path::PathBuf>,
}

/// How the tools reach the brokers, from `--command-config`; plain text when unset.
static SECURITY: std::sync::OnceLock<client::Security> = std::sync::OnceLock::new();

/// Reads `--command-config` (if given) into the security every tool connects with.
pub(crate) fn init_security(command_config: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(path) = command_config else {
        return Ok(());
    };
    let props = crate::config_file::read(path)
        .with_context(|| format!("reading --command-config {}", path.display()))?;
    let security = broker::config::client_security(&props)
        .with_context(|| format!("--command-config {}", path.display()))?;
    let _ = SECURITY.set(security);
    Ok(())
}

/// `error` with a hint when a broker closed a plain-text connection at once or answered it
/// with something other than Kafka, as TLS and SASL listeners do.
pub(crate) fn hint_security(error: anyhow::Error) -> anyhow::Error {
    let closed = error.chain().any(|cause| {
        match cause.downcast_ref::<client::ClientError>() {
            Some(client::ClientError::Io { source, .. }) => matches!(
                source.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            // A TLS alert read as a Kafka response's length.
            Some(client::ClientError::Protocol(message)) => message.starts_with("response length"),
            _ => false,
        }
    });
    if closed {
        error.context(
            "the broker closed the connection: a TLS or SASL listener needs --command-config \
             with its security.protocol",
        )
    } else {
        error
    }
}

/// The security the tools connect with.
pub(crate) fn security() -> &'static client::Security {
    SECURITY.get_or_init(client::Security::default)
}

/// A client of the cluster at `brokers`, reached with [`security`].
pub(crate) async fn connect(brokers: &str) -> client::Result<client::Cluster> {
    client::Cluster::connect_with(brokers, security()).await
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
