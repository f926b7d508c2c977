//! `strata config`: the configuration reference.

use std::io::Write;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print every broker property Strata knows (type, default, whether it is dynamic, what
    /// Strata does with it) as Markdown: the source of docs/CONFIGURATION.md.
    Reference {
        /// Only the properties Strata applies, as README.md's table.
        #[arg(long)]
        applied: bool,
    },
}

pub(crate) fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Reference { applied } => {
            let text = if applied {
                broker::config::applied_table_markdown()
            } else {
                broker::config::reference_markdown()
            };
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}
