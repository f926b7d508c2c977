//! The metrics endpoint's page: Prometheus text exposition format 0.0.4, built at scrape
//! time from the counters the request path keeps ([`crate::metrics`]) and from state read
//! on the spot (partitions, groups, the Raft node, `/proc/self`). Names follow Kafka's JMX
//! names where one exists; README.md lists the mapping.
//!
//! Request times are Prometheus summaries: quantiles of the HDR histograms the broker keeps
//! since it started, like the percentiles Kafka's `RequestMetrics` publish, with `_sum` and
//! `_count` so a rate or a windowed mean can be taken.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use controller::Controller;

use crate::metrics::{StageSummary, TopicStats, STAGES};
use crate::partition::Partition;
use crate::Broker;

/// The page for `GET /metrics`: the Raft state of a voter, everything the broker of a
/// broker node knows, and the process's. `controller` and `broker` are `None` until they
/// started; `broker` stays `None` on a controller-only node.
pub fn render(controller: Option<&Controller>, broker: Option<&Broker>) -> String {
    let mut page = Page::default();
    if let Some(controller) = controller {
        raft(&mut page, controller);
    }
    if let Some(broker) = broker {
        requests(&mut page, broker);
        topics(&mut page, broker);
        partitions(&mut page, broker);
        active_controller(&mut page, broker);
        groups(&mut page, broker);
        connections(&mut page, broker);
        quotas(&mut page, broker);
    }
    process(&mut page);
    page.text
}

/// Text being built, one family after another.
#[derive(Default)]
struct Page {
    text: String,
}

impl Page {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the family just started.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, label)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"");
                escape_label(&mut self.text, label);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family with a single unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// Kafka's `kafka.network:type=RequestMetrics` per request type.
fn requests(page: &mut Page, broker: &Broker) {
    let summary = broker.request_metrics().summary();
    page.family(
        "strata_requests_total",
        "counter",
        "Requests read, by API (RequestMetrics RequestsPerSec).",
    );
    for (api, stages) in &summary {
        let name = format!("{api:?}");
        page.sample(
            "strata_requests_total",
            &[("request", &name)],
            stages[0].count,
        );
    }
    let families = [
        (
            "strata_request_queue_time_seconds",
            "From read off the socket to its handler starting (RequestMetrics RequestQueueTimeMs).",
        ),
        (
            "strata_request_handling_time_seconds",
            "In its handler, waits for replication and long polls included (RequestMetrics LocalTimeMs + RemoteTimeMs).",
        ),
        (
            "strata_request_response_send_time_seconds",
            "From the reply being ready to its socket write completing (RequestMetrics ResponseSendTimeMs).",
        ),
        (
            "strata_request_total_time_seconds",
            "From read off the socket to the reply written (RequestMetrics TotalTimeMs).",
        ),
    ];
    for (stage, (family, help)) in STAGES.iter().zip(families) {
        page.family(family, "summary", help);
        for (api, stages) in &summary {
            let name = format!("{api:?}");
            let s: &StageSummary = &stages[*stage as usize];
            for (quantile, micros) in [
                ("0.5", s.p50),
                ("0.75", s.p75),
                ("0.95", s.p95),
                ("0.99", s.p99),
                ("0.999", s.p999),
            ] {
                page.sample(
                    family,
                    &[("request", &name), ("quantile", quantile)],
                    seconds(micros),
                );
            }
            page.sample(
                &format!("{family}_sum"),
                &[("request", &name)],
                seconds(s.sum),
            );
            page.sample(&format!("{family}_count"), &[("request", &name)], s.count);
        }
    }
}

/// Kafka's `kafka.server:type=BrokerTopicMetrics` per topic.
fn topics(page: &mut Page, broker: &Broker) {
    let topics = broker.topic_stats.snapshot();
    type Field = fn(&TopicStats) -> &std::sync::atomic::AtomicU64;
    let families: [(&str, &str, Field); 5] = [
        (
            "strata_topic_bytes_in_total",
            "Record bytes appended by producers (BrokerTopicMetrics BytesInPerSec).",
            |s| &s.bytes_in,
        ),
        (
            "strata_topic_messages_in_total",
            "Records appended by producers (BrokerTopicMetrics MessagesInPerSec).",
            |s| &s.messages_in,
        ),
        (
            "strata_topic_bytes_out_total",
            "Record bytes sent to consumers (BrokerTopicMetrics BytesOutPerSec).",
            |s| &s.bytes_out,
        ),
        (
            "strata_topic_replication_bytes_in_total",
            "Record bytes appended from leaders (BrokerTopicMetrics ReplicationBytesInPerSec).",
            |s| &s.replication_bytes_in,
        ),
        (
            "strata_topic_replication_bytes_out_total",
            "Record bytes sent to followers (BrokerTopicMetrics ReplicationBytesOutPerSec).",
            |s| &s.replication_bytes_out,
        ),
    ];
    for (family, help, field) in families {
        page.family(family, "counter", help);
        for (name, stats) in &topics {
            let value = field(stats).load(Ordering::Relaxed);
            page.sample(family, &[("topic", name)], value);
        }
    }
    let sum = |field: Field| -> u64 {
        topics
            .iter()
            .map(|(_, s)| field(s).load(Ordering::Relaxed))
            .sum()
    };
    page.single(
        "strata_replica_manager_isr_shrinks_total",
        "counter",
        "ISR shrinks of partitions led here (ReplicaManager IsrShrinksPerSec).",
        sum(|s| &s.isr_shrinks),
    );
    page.single(
        "strata_replica_manager_isr_expands_total",
        "counter",
        "ISR expansions of partitions led here (ReplicaManager IsrExpandsPerSec).",
        sum(|s| &s.isr_expands),
    );
}

/// Kafka's `kafka.log:type=Log` per partition and `kafka.server:type=ReplicaManager`.
fn partitions(page: &mut Page, broker: &Broker) {
    let mut hosted = broker.all_partitions();
    hosted.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
    let health: Vec<_> = hosted.iter().map(|p| p.health()).collect();
    type Value = fn(&Partition) -> i64;
    let families: [(&str, &str, Value); 5] = [
        (
            "strata_log_end_offset",
            "One past the last offset in the local log (Log LogEndOffset).",
            |p| p.log.log_end_offset(),
        ),
        (
            "strata_log_start_offset",
            "The first offset in the local log (Log LogStartOffset).",
            |p| p.log.log_start_offset(),
        ),
        (
            "strata_log_size_bytes",
            "Bytes of the local log's segments (Log Size).",
            |p| p.log.size_in_bytes() as i64,
        ),
        (
            "strata_log_segments",
            "Segments of the local log (Log NumLogSegments).",
            |p| p.log.segment_count() as i64,
        ),
        (
            "strata_partition_high_watermark",
            "The high watermark as this replica knows it.",
            |p| p.log.high_watermark(),
        ),
    ];
    for (family, help, value) in families {
        page.family(family, "gauge", help);
        for p in &hosted {
            let index = p.index.to_string();
            page.sample(
                family,
                &[("topic", &p.topic), ("partition", &index)],
                value(p),
            );
        }
    }
    let count =
        |f: fn(&crate::partition::PartitionHealth) -> bool| health.iter().filter(|h| f(h)).count();
    page.single(
        "strata_replica_manager_partition_count",
        "gauge",
        "Partitions with a replica here (ReplicaManager PartitionCount).",
        hosted.len(),
    );
    page.single(
        "strata_replica_manager_leader_count",
        "gauge",
        "Partitions led here (ReplicaManager LeaderCount).",
        count(|h| h.leader),
    );
    page.single(
        "strata_replica_manager_under_replicated_partitions",
        "gauge",
        "Partitions led here with fewer in-sync replicas than replicas (ReplicaManager UnderReplicatedPartitions).",
        count(|h| h.leader && h.isr < h.replicas),
    );
    page.single(
        "strata_replica_manager_under_min_isr_partitions",
        "gauge",
        "Partitions led here with fewer in-sync replicas than min.insync.replicas (ReplicaManager UnderMinIsrPartitionCount).",
        count(|h| h.leader && h.isr < h.min_isr),
    );
    page.single(
        "strata_replica_manager_at_min_isr_partitions",
        "gauge",
        "Partitions led here with exactly min.insync.replicas in-sync replicas (ReplicaManager AtMinIsrPartitionCount).",
        count(|h| h.leader && h.isr == h.min_isr),
    );
}

/// Kafka's `kafka.controller:type=KafkaController`, non-zero on the active controller only
/// so that a sum over the cluster counts each partition once.
fn active_controller(page: &mut Page, broker: &Broker) {
    let controller = broker.controller();
    let active = controller.leader_id() == Some(controller.node_id());
    let image = broker.image();
    let (mut topics, mut partitions, mut offline) = (0usize, 0usize, 0usize);
    if active {
        for topic in image.topics() {
            topics += 1;
            for p in &topic.partitions {
                partitions += 1;
                let live = p.leader >= 0 && image.live_brokers().any(|b| b.node_id == p.leader);
                offline += usize::from(!live);
            }
        }
    }
    page.single(
        "strata_controller_active_controller_count",
        "gauge",
        "1 on the node leading the metadata quorum (KafkaController ActiveControllerCount).",
        u8::from(active),
    );
    page.single(
        "strata_controller_offline_partitions_count",
        "gauge",
        "Partitions without a live leader, on the active controller (KafkaController OfflinePartitionsCount).",
        offline,
    );
    page.single(
        "strata_controller_global_topic_count",
        "gauge",
        "Topics, on the active controller (KafkaController GlobalTopicCount).",
        topics,
    );
    page.single(
        "strata_controller_global_partition_count",
        "gauge",
        "Partitions, on the active controller (KafkaController GlobalPartitionCount).",
        partitions,
    );
}

/// Groups this node coordinates: counts by state, committed offsets and lag.
fn groups(page: &mut Page, broker: &Broker) {
    // While a `__consumer_offsets` partition loads the listing is refused; nothing is shown.
    let listed = broker.groups.list().unwrap_or_default();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for group in &listed {
        *by_state.entry(group.state).or_default() += 1;
    }
    page.family(
        "strata_group_coordinator_groups",
        "gauge",
        "Groups coordinated here, by state (group-coordinator-metrics group-count).",
    );
    for (state, n) in &by_state {
        page.sample("strata_group_coordinator_groups", &[("state", state)], n);
    }
    let hosted: HashMap<(String, i32), Arc<Partition>> = broker
        .all_partitions()
        .into_iter()
        .map(|p| ((p.topic.clone(), p.index), p))
        .collect();
    let mut committed = Vec::new();
    for group in &listed {
        let Ok(handle) = broker.groups.group(&group.id) else {
            continue;
        };
        for ((topic, partition), offset) in handle.committed() {
            let end = hosted
                .get(&(topic.clone(), partition))
                .map(|p| p.log.high_watermark());
            committed.push((group.id.clone(), topic, partition, offset.offset, end));
        }
    }
    page.family(
        "strata_consumer_group_committed_offset",
        "gauge",
        "The offset a group committed for a partition.",
    );
    for (group, topic, partition, offset, _) in &committed {
        let partition = partition.to_string();
        page.sample(
            "strata_consumer_group_committed_offset",
            &[
                ("group", group),
                ("topic", topic),
                ("partition", &partition),
            ],
            offset,
        );
    }
    page.family(
        "strata_consumer_group_lag",
        "gauge",
        "High watermark minus the committed offset, for partitions with a replica on this node.",
    );
    for (group, topic, partition, offset, end) in &committed {
        let Some(end) = end else { continue };
        let partition = partition.to_string();
        page.sample(
            "strata_consumer_group_lag",
            &[
                ("group", group),
                ("topic", topic),
                ("partition", &partition),
            ],
            (end - offset).max(0),
        );
    }
}

/// Kafka's `kafka.server:type={Produce,Fetch,Request},user=...,client-id=...` throttle
/// metrics, as counters per quota sensor.
fn quotas(page: &mut Page, broker: &Broker) {
    let stats = broker.quotas.throttle_stats();
    for (family, help, value) in [
        (
            "strata_quota_throttle_time_ms_total",
            "Throttle time given to clients under a quota, in ms (Produce/Fetch/Request throttle-time).",
            (|s: &crate::quota::ThrottleStats| s.throttle_ms_total) as fn(&crate::quota::ThrottleStats) -> u64,
        ),
        (
            "strata_quota_throttled_requests_total",
            "Requests throttled by a client quota.",
            |s: &crate::quota::ThrottleStats| s.throttled,
        ),
    ] {
        page.family(family, "counter", help);
        for s in &stats {
            page.sample(
                family,
                &[("quota", s.quota), ("user", &s.user), ("client_id", &s.client_id)],
                value(s),
            );
        }
    }
}

/// Kafka's `kafka.server:type=socket-server-metrics` for the Kafka listener.
fn connections(page: &mut Page, broker: &Broker) {
    let stats = &broker.connection_stats;
    page.single(
        "strata_socket_server_connection_count",
        "gauge",
        "Open client connections (socket-server-metrics connection-count).",
        stats.open_now(),
    );
    page.single(
        "strata_socket_server_connection_creation_total",
        "counter",
        "Connections accepted (socket-server-metrics connection-creation-total).",
        stats.created.load(Ordering::Relaxed),
    );
    page.single(
        "strata_socket_server_connection_close_total",
        "counter",
        "Connections closed (socket-server-metrics connection-close-total).",
        stats.closed.load(Ordering::Relaxed),
    );
    page.single(
        "strata_socket_server_successful_reauthentication_total",
        "counter",
        "SASL re-authentications completed (socket-server-metrics successful-reauthentication-total, KIP-368).",
        stats.reauthenticated.load(Ordering::Relaxed),
    );
    page.single(
        "strata_socket_server_failed_reauthentication_total",
        "counter",
        "SASL re-authentications failed (socket-server-metrics failed-reauthentication-total).",
        stats.failed_reauthentications.load(Ordering::Relaxed),
    );
    page.single(
        "strata_socket_server_expired_connections_killed_count",
        "counter",
        "Connections closed because their SASL session expired without re-authentication (socket-server-metrics expired-connections-killed-count).",
        stats.expired_killed.load(Ordering::Relaxed),
    );
}

/// Kafka's `kafka.server:type=raft-metrics` of a voter.
fn raft(page: &mut Page, controller: &Controller) {
    let Some(status) = controller.raft_status() else {
        return;
    };
    page.family(
        "strata_raft_current_state",
        "gauge",
        "1 for this voter's Raft state (raft-metrics current-state).",
    );
    for state in ["leader", "follower", "candidate", "learner", "shutdown"] {
        page.sample(
            "strata_raft_current_state",
            &[("state", state)],
            u8::from(state == status.state),
        );
    }
    page.single(
        "strata_raft_current_leader",
        "gauge",
        "The quorum leader's node id, -1 when unknown (raft-metrics current-leader).",
        status.leader_id.unwrap_or(-1),
    );
    page.single(
        "strata_raft_current_epoch",
        "gauge",
        "The Raft term; each election raises it (raft-metrics current-epoch).",
        status.term,
    );
    page.single(
        "strata_raft_log_end_offset",
        "gauge",
        "One past the last entry of the local metadata log (raft-metrics log-end-offset).",
        status.log_end_offset,
    );
    page.single(
        "strata_raft_high_watermark",
        "gauge",
        "One past the last committed metadata entry (raft-metrics high-watermark).",
        status.high_watermark,
    );
    page.single(
        "strata_raft_applied_offset",
        "gauge",
        "One past the last metadata entry applied to the image.",
        status.applied,
    );
    page.single(
        "strata_raft_snapshot_offset",
        "gauge",
        "One past the last metadata entry the latest snapshot covers.",
        status.snapshot,
    );
}

/// File descriptors, memory mappings and memory of this process, from `/proc/self`
/// (absent where there is no `/proc`).
fn process(page: &mut Page) {
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        page.single(
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            fds.count(),
        );
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<u64>().ok()
        });
    if let Some(max) = max_fds {
        page.single(
            "process_max_fds",
            "gauge",
            "The soft limit of open file descriptors.",
            max,
        );
    }
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        page.single(
            "strata_process_memory_maps",
            "gauge",
            "Memory mappings (segment indexes are mapped; see vm.max_map_count).",
            maps.lines().count(),
        );
    }
    if let Some(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        page.single(
            "strata_process_max_memory_maps",
            "gauge",
            "The system's vm.max_map_count.",
            max,
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        // Lines like `VmRSS:     1234 kB`.
        let kib = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        };
        if let Some(virt) = kib("VmSize:") {
            page.single(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size.",
                virt * 1024,
            );
        }
        if let Some(rss) = kib("VmRSS:") {
            page.single(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size.",
                rss * 1024,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_label_values() {
        let mut page = Page::default();
        page.family("m", "gauge", "help");
        page.sample("m", &[("a", "x\"y\\z\nw"), ("b", "c")], 3);
        assert_eq!(
            page.text,
            "# HELP m help\n# TYPE m gauge\nm{a=\"x\\\"y\\\\z\\nw\",b=\"c\"} 3\n"
        );
    }

    #[test]
    fn process_metrics_come_from_proc() {
        let mut page = Page::default();
        process(&mut page);
        if std::path::Path::new("/proc/self/fd").exists() {
            assert!(page.text.contains("\nprocess_open_fds "), "{}", page.text);
            assert!(page.text.contains("\nstrata_process_memory_maps "));
            assert!(page.text.contains("\nprocess_resident_memory_bytes "));
        }
    }
}
