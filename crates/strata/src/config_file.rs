//! The `--config` file: TOML whose keys are Kafka's property names, either quoted
//! (`"log.dirs" = "/data"`) or as dotted keys (`log.dirs = "/data"`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

/// Reads the file into flat Kafka properties.
pub(crate) fn read(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let table: toml::Table = text.parse()?;
    let mut out = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut out)?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    value: &toml::Value,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let text = match value {
        toml::Value::Table(table) => {
            for (key, v) in table {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, v, out)?;
            }
            return Ok(());
        }
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => {
            let mut parts = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) => parts.push(s.clone()),
                    toml::Value::Integer(i) => parts.push(i.to_string()),
                    other => bail!("{prefix}: unsupported list item {other}"),
                }
            }
            parts.join(",")
        }
        toml::Value::Datetime(d) => d.to_string(),
    };
    out.insert(prefix.to_owned(), text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_dotted_keys_give_the_same_properties() {
        let quoted = parse("\"log.dirs\" = \"/d\"\n\"num.partitions\" = 3\n\"auto.create.topics.enable\" = false\n").unwrap();
        let dotted =
            parse("log.dirs = \"/d\"\nnum.partitions = 3\nauto.create.topics.enable = false\n")
                .unwrap();
        assert_eq!(quoted, dotted);
        assert_eq!(quoted["num.partitions"], "3");
        assert_eq!(quoted["auto.create.topics.enable"], "false");
    }
}
