//! Log output on standard error: text (coloured only on a terminal) or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`, `log.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

impl LogFormat {
    /// Parses a config file's `log.format` (`text` or `json`, any case).
    pub(crate) fn from_property(value: &str) -> anyhow::Result<Self> {
        <Self as clap::ValueEnum>::from_str(value.trim(), true)
            .map_err(|_| anyhow::anyhow!("log.format={value:?}: expected text or json"))
    }
}

/// Installs the process's log subscriber; `RUST_LOG` filters (default `info,openraft=warn`).
pub(crate) fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes are noise in a file or a pipe.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_property_takes_text_or_json() {
        assert_eq!(LogFormat::from_property("json").unwrap(), LogFormat::Json);
        assert_eq!(LogFormat::from_property(" TEXT").unwrap(), LogFormat::Text);
        assert!(LogFormat::from_property("xml").is_err());
    }
}
