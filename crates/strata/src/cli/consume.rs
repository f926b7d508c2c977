//! `strata consume`: print a topic's records.

use std::io::Write;
use std::time::Duration;

use client::{decode_records, OwnedRecord};

#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    /// Topic name.
    topic: String,
    /// Only this partition [default: all].
    #[arg(short, long)]
    partition: Option<i32>,
    /// beginning, end, or an offset.
    #[arg(long, default_value = "beginning")]
    from: String,
    /// Stop after this many records.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(short, long)]
    follow: bool,
    /// Output: `json`, or a template with %t topic, %p partition, %o offset, %T timestamp,
    /// %k key, %v value, %h headers, \n and \t.
    #[arg(long, default_value = "%v")]
    format: String,
}

fn render(format: &str, topic: &str, partition: i32, r: &OwnedRecord) -> String {
    let text =
        |b: &Option<bytes::Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    if format == "json" {
        let headers: Vec<_> = r
            .headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, text(v)]))
            .collect();
        return serde_json::json!({
            "topic": topic, "partition": partition, "offset": r.offset, "timestamp": r.timestamp,
            "key": text(&r.key), "value": text(&r.value), "headers": headers,
        })
        .to_string();
    }
    let headers = r
        .headers
        .iter()
        .map(|(k, v)| format!("{k}={}", text(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match (c, c == '%' || c == '\\') {
            (_, true) => match (c, chars.next()) {
                ('%', Some('t')) => out.push_str(topic),
                ('%', Some('p')) => out.push_str(&partition.to_string()),
                ('%', Some('o')) => out.push_str(&r.offset.to_string()),
                ('%', Some('T')) => out.push_str(&r.timestamp.to_string()),
                ('%', Some('k')) => out.push_str(&text(&r.key).unwrap_or_default()),
                ('%', Some('v')) => out.push_str(&text(&r.value).unwrap_or_default()),
                ('%', Some('h')) => out.push_str(&headers),
                ('\\', Some('n')) => out.push('\n'),
                ('\\', Some('t')) => out.push('\t'),
                (c, Some(other)) => {
                    out.push(c);
                    out.push(other);
                }
                (c, None) => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out
}

pub(crate) async fn run(args: ConsumeArgs, brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    let topics = cluster
        .metadata(Some(&[args.topic.as_str()]), false)
        .await?;
    let topic = topics
        .first()
        .ok_or_else(|| anyhow::anyhow!("topic {} not found", args.topic))?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![p],
        None => topic.partitions.iter().map(|p| p.partition).collect(),
    };
    let mut positions = Vec::new();
    for &p in &partitions {
        let offset = match args.from.as_str() {
            "beginning" => cluster.list_offset(&args.topic, p, -2).await?,
            "end" => cluster.list_offset(&args.topic, p, -1).await?,
            n => n
                .parse()
                .map_err(|_| anyhow::anyhow!("--from takes beginning, end or an offset"))?,
        };
        let end = cluster.list_offset(&args.topic, p, -1).await?;
        positions.push((p, offset, end));
    }
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    loop {
        let mut progressed = false;
        let mut all_done = true;
        for (partition, offset, end) in positions.iter_mut() {
            if !args.follow && *offset >= *end {
                continue;
            }
            all_done = false;
            let wait = if args.follow && positions_len_is_one(&partitions) {
                500
            } else {
                0
            };
            let (records, _hw) = cluster
                .fetch(
                    &args.topic,
                    *partition,
                    *offset,
                    Duration::from_millis(wait),
                )
                .await?;
            let mut out = stdout.lock();
            for r in decode_records(&records)? {
                if r.offset < *offset {
                    continue;
                }
                writeln!(out, "{}", render(&args.format, &args.topic, *partition, &r))?;
                *offset = r.offset + 1;
                progressed = true;
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    return Ok(());
                }
            }
        }
        if all_done {
            return Ok(());
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn positions_len_is_one(partitions: &[i32]) -> bool {
    partitions.len() == 1
}
