//! The `--config` file: TOML whose keys are Kafka's property names, either quoted
//! (`"log.dirs" = "/data"`) or as dotted keys (`log.dirs = "/data"`), or Kafka's own
//! `server.properties` (Java properties: `log.dirs=/data`), so an operator's file works
//! unchanged. A file named `*.properties` is read as properties; any other is read as TOML,
//! and as properties if it is not TOML.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

/// Reads the file into flat Kafka properties.
pub(crate) fn read(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "properties") {
        return Ok(parse_properties(&text));
    }
    parse_either(&text).with_context(|| format!("parsing {}", path.display()))
}

/// TOML, else Java properties. A file that looks like TOML with a mistake (a section
/// header, a quoted value) keeps the TOML error instead of being read as properties.
fn parse_either(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let toml_error = match parse(text) {
        Ok(props) => return Ok(props),
        Err(e) => e,
    };
    let props = parse_properties(text);
    let looks_like_toml = text.lines().any(|l| l.trim_start().starts_with('['))
        || props
            .values()
            .any(|v| v.starts_with('"') || v.starts_with('\''));
    if looks_like_toml {
        return Err(toml_error);
    }
    Ok(props)
}

/// Java's `Properties.load` format: `key=value`, `key: value` or `key value`; `#` and `!`
/// start comments; a line ending in an odd number of backslashes continues on the next;
/// `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\<char>` are escapes. Later keys win.
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut line = first.trim_start().to_owned();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        while ends_in_escape(&line) {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&line);
        out.insert(unescape(key), unescape(value));
    }
    out
}

fn ends_in_escape(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace; the separator's surrounding
/// whitespace belongs to neither side.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                let key = &line[..i];
                let mut rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
                if c.is_whitespace() || c == '\x0c' {
                    if let Some(r) = rest.strip_prefix(['=', ':']) {
                        rest = r;
                    }
                } else {
                    rest = &rest[1..];
                }
                return (key, rest.trim_start_matches([' ', '\t', '\x0c']));
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
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

    #[test]
    fn kafka_server_properties_are_read_as_java_properties() {
        let text = "# Kafka's example\n\
            process.roles=broker,controller\n\
            node.id = 1\n\
            listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
            ! another comment\n\
            log.dirs: /tmp/kraft-combined-logs\n\
            num.partitions 3\n\
            listener.security.protocol.map=CONTROLLER:PLAINTEXT,\\\n    PLAINTEXT:PLAINTEXT\n\
            key\\=with\\:escapes=tab\\there\n\
            \n\
            empty=\n";
        let props = parse_either(text).unwrap();
        assert_eq!(props["process.roles"], "broker,controller");
        assert_eq!(props["node.id"], "1");
        assert_eq!(props["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093");
        assert_eq!(props["log.dirs"], "/tmp/kraft-combined-logs");
        assert_eq!(props["num.partitions"], "3");
        assert_eq!(
            props["listener.security.protocol.map"],
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        );
        assert_eq!(props["key=with:escapes"], "tab\there");
        assert_eq!(props["empty"], "");
        assert_eq!(props.len(), 8);
    }

    #[test]
    fn broken_toml_keeps_its_toml_error() {
        let err = parse_either("\"log.dirs\" = \"/d\nnum.partitions = 3\n").unwrap_err();
        assert!(err.downcast_ref::<toml::de::Error>().is_some(), "{err}");
        assert!(parse_either("[section\nlog.dirs = 1\n").is_err());
    }
}
