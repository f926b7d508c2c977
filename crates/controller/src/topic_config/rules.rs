//! Value rules of the topic configs, worded like Kafka's `ConfigException` reasons.

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| format!("Not a number of type {what}"))
}

pub(super) fn long_at_least<const MIN: i64>(value: &str) -> Result<(), String> {
    let v: i64 = parse(value, "LONG")?;
    if v < MIN {
        return Err(format!("Value must be at least {MIN}"));
    }
    Ok(())
}

pub(super) fn any_long(value: &str) -> Result<(), String> {
    parse::<i64>(value, "LONG").map(drop)
}

pub(super) fn int_between<const MIN: i32, const MAX: i32>(value: &str) -> Result<(), String> {
    let v: i32 = parse(value, "INT")?;
    if v < MIN {
        return Err(format!("Value must be at least {MIN}"));
    }
    if v > MAX {
        return Err(format!("Value must be no more than {MAX}"));
    }
    Ok(())
}

pub(super) fn gzip_level(value: &str) -> Result<(), String> {
    let v: i32 = parse(value, "INT")?;
    if v == -1 || (1..=9).contains(&v) {
        Ok(())
    } else {
        Err("Value must be between 1 and 9, or -1 for the default level".into())
    }
}

pub(super) fn ratio(value: &str) -> Result<(), String> {
    let v: f64 = parse(value, "DOUBLE")?;
    if v.is_nan() || v < 0.0 {
        return Err("Value must be at least 0".into());
    }
    if v > 1.0 {
        return Err("Value must be no more than 1".into());
    }
    Ok(())
}

pub(super) fn boolean(value: &str) -> Result<(), String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        Ok(())
    } else {
        Err("Expected value to be either true or false".into())
    }
}

fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value.trim()) {
        Ok(())
    } else {
        Err(format!("String must be one of: {}", allowed.join(", ")))
    }
}

/// Splits a LIST value like Kafka: blank means empty; otherwise commas with optional
/// whitespace around them separate the elements (empty elements are kept).
fn list_items(value: &str) -> Vec<&str> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split(',').map(str::trim).collect()
    }
}

pub(super) fn cleanup_policy(value: &str) -> Result<(), String> {
    list_items(value)
        .into_iter()
        .try_for_each(|item| one_of(item, &["compact", "delete"]))
}

pub(super) fn compression_type(value: &str) -> Result<(), String> {
    one_of(
        value,
        &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
    )
}

pub(super) fn timestamp_type(value: &str) -> Result<(), String> {
    one_of(value, &["CreateTime", "LogAppendTime"])
}

pub(super) fn throttled_replicas(value: &str) -> Result<(), String> {
    let items = list_items(value);
    let pair = |s: &str| match s.split_once(':') {
        Some((p, b)) => {
            !p.is_empty()
                && !b.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => s.is_empty(),
    };
    if items.iter().all(|s| pair(s)) || items.concat() == "*" {
        Ok(())
    } else {
        Err(
            "must be the literal '*' or a list of replicas in the following format: \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                .into(),
        )
    }
}

pub(super) fn remote_storage(value: &str) -> Result<(), String> {
    boolean(value)?;
    if value.trim().eq_ignore_ascii_case("true") {
        return Err("Tiered Storage functionality is disabled in the broker. \
                    Topic cannot be configured with remote log storage."
            .into());
    }
    Ok(())
}

pub(super) fn metadata_version(value: &str) -> Result<(), String> {
    let v = value.trim();
    let (release, iv) = match v.split_once("-IV") {
        Some((r, iv)) => (r, Some(iv)),
        None => (v, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| numeric(p))
        && iv.is_none_or(numeric);
    if ok {
        Ok(())
    } else {
        Err(format!("Version `{v}` is not a valid version"))
    }
}
