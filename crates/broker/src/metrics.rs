//! Broker-side request timings per Kafka API, in the spirit of Kafka's `RequestMetrics`
//! (`RequestQueueTimeMs`, `LocalTimeMs` + `RemoteTimeMs`, `ResponseSendTimeMs`):
//!
//! - queue: from the whole frame being read off the socket to its handler starting;
//! - handling: from the handler starting to its reply being ready (an acks=all produce
//!   includes its wait for replication, a fetch its long poll);
//! - send: from the reply being ready to the socket write that carried it completing;
//! - total: from the whole frame being read to that write completing (`TotalTimeMs`).
//!
//! Each is an HDR histogram in microseconds, kept until the process ends, for the metrics
//! endpoint to export and for the summary logged at shutdown.
//!
//! Also the counters the request path bumps for the metrics endpoint: per topic
//! ([`TopicStats`], Kafka's `BrokerTopicMetrics`) and per listener ([`ConnectionStats`]).
//! They are plain atomics; everything else the endpoint shows is read at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;

/// The longest time a histogram records exactly; longer times count as this.
const MAX_MICROS: u64 = 600_000_000;

/// A stage of a request's life on the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Read, waiting for its handler.
    Queue,
    /// In its handler (including parked waits).
    Handling,
    /// Its reply waiting for and in the socket write.
    Send,
    /// From read to its reply written: the other three together.
    Total,
}

/// The stages in the order of [`RequestMetrics::summary`]'s arrays.
pub const STAGES: [Stage; 4] = [Stage::Queue, Stage::Handling, Stage::Send, Stage::Total];

/// Percentiles of one stage, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSummary {
    /// Requests recorded.
    pub count: u64,
    /// Sum of the recorded times (from the histogram's mean, so within its precision).
    pub sum: u64,
    /// Median.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// Timings of every API this broker serves.
#[derive(Debug)]
pub struct RequestMetrics {
    /// By api key: a histogram per stage, in the order of [`STAGES`].
    apis: BTreeMap<i16, [Mutex<Histogram<u64>>; 4]>,
}

impl RequestMetrics {
    /// Histograms for each of `keys`; timings of other keys are not kept.
    pub(crate) fn new(keys: impl IntoIterator<Item = ApiKey>) -> Self {
        let histogram = || {
            Mutex::new(
                Histogram::new_with_bounds(1, MAX_MICROS, 3)
                    .expect("static histogram bounds are valid"),
            )
        };
        let apis = keys
            .into_iter()
            .map(|key| (key as i16, [(); 4].map(|()| histogram())))
            .collect();
        Self { apis }
    }

    /// Records that a request of `api` spent `elapsed` in `stage`.
    pub fn record(&self, api: i16, stage: Stage, elapsed: Duration) {
        if let Some(histograms) = self.apis.get(&api) {
            let micros = (elapsed.as_micros() as u64).clamp(1, MAX_MICROS);
            histograms[stage as usize].lock().saturating_record(micros);
        }
    }

    /// The stages of every API that saw requests, by api key.
    pub fn summary(&self) -> Vec<(ApiKey, [StageSummary; 4])> {
        self.apis
            .iter()
            .filter_map(|(key, histograms)| {
                let stages = [0, 1, 2, 3].map(|i| {
                    let h = histograms[i].lock();
                    StageSummary {
                        count: h.len(),
                        sum: (h.mean() * h.len() as f64) as u64,
                        p50: h.value_at_quantile(0.50),
                        p75: h.value_at_quantile(0.75),
                        p95: h.value_at_quantile(0.95),
                        p99: h.value_at_quantile(0.99),
                        p999: h.value_at_quantile(0.999),
                        max: h.max(),
                    }
                });
                let key = ApiKey::try_from(*key).ok()?;
                (stages[0].count > 0).then_some((key, stages))
            })
            .collect()
    }

    /// Logs one line per API that saw requests (at shutdown, and for benchmarks).
    pub fn log_summary(&self) {
        for (api, [queue, handling, send, _]) in self.summary() {
            tracing::info!(
                ?api,
                requests = queue.count,
                queue_p50_us = queue.p50,
                queue_p99_us = queue.p99,
                handling_p50_us = handling.p50,
                handling_p99_us = handling.p99,
                handling_p999_us = handling.p999,
                send_p50_us = send.p50,
                send_p99_us = send.p99,
                "request times"
            );
        }
    }
}

/// Counters of one topic on this broker, as Kafka's `BrokerTopicMetrics` keeps them.
#[derive(Debug, Default)]
pub struct TopicStats {
    /// Record bytes appended by producers (`BytesInPerSec`).
    pub bytes_in: AtomicU64,
    /// Records appended by producers (`MessagesInPerSec`).
    pub messages_in: AtomicU64,
    /// Record bytes sent to consumers (`BytesOutPerSec`).
    pub bytes_out: AtomicU64,
    /// Record bytes appended from leaders (`ReplicationBytesInPerSec`).
    pub replication_bytes_in: AtomicU64,
    /// Record bytes sent to followers (`ReplicationBytesOutPerSec`).
    pub replication_bytes_out: AtomicU64,
    /// ISR shrinks of partitions led here (`ReplicaManager` `IsrShrinksPerSec`).
    pub isr_shrinks: AtomicU64,
    /// ISR expansions of partitions led here (`ReplicaManager` `IsrExpandsPerSec`).
    pub isr_expands: AtomicU64,
}

impl TopicStats {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The [`TopicStats`] of every topic this broker has hosted since it started; a partition
/// holds its topic's entry, so the request path touches only atomics.
#[derive(Debug, Default)]
pub struct TopicStatsRegistry {
    topics: Mutex<BTreeMap<String, Arc<TopicStats>>>,
}

impl TopicStatsRegistry {
    /// The counters of `topic`, created at zero on first use.
    pub fn topic(&self, topic: &str) -> Arc<TopicStats> {
        let mut topics = self.topics.lock();
        match topics.get(topic) {
            Some(stats) => Arc::clone(stats),
            None => Arc::clone(topics.entry(topic.to_owned()).or_default()),
        }
    }

    /// Every topic's counters, by name.
    pub fn snapshot(&self) -> Vec<(String, Arc<TopicStats>)> {
        let topics = self.topics.lock();
        topics
            .iter()
            .map(|(name, stats)| (name.clone(), Arc::clone(stats)))
            .collect()
    }

    /// Forgets a deleted topic, as Kafka removes its metrics.
    pub fn remove(&self, topic: &str) {
        self.topics.lock().remove(topic);
    }
}

/// Connections of the Kafka listener (Kafka's `socket-server-metrics`).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections accepted (`connection-creation-total`).
    pub created: AtomicU64,
    /// Connections closed, by either side (`connection-close-total`).
    pub closed: AtomicU64,
    /// Completed SASL re-authentications (`successful-reauthentication-total`, KIP-368).
    pub reauthenticated: AtomicU64,
    /// Failed SASL re-authentications (`failed-reauthentication-total`).
    pub failed_reauthentications: AtomicU64,
    /// Connections closed because their SASL session expired
    /// (`expired-connections-killed-count`).
    pub expired_killed: AtomicU64,
}

impl ConnectionStats {
    /// Counts an accepted connection; the returned guard counts its close when dropped.
    pub fn open(self: &Arc<Self>) -> ConnectionGuard {
        self.created.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    /// Connections open now (`connection-count`).
    pub fn open_now(&self) -> u64 {
        let closed = self.closed.load(Ordering::Relaxed);
        self.created.load(Ordering::Relaxed).saturating_sub(closed)
    }
}

/// Counts a connection's close when dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<ConnectionStats>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.closed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_stage_of_served_apis_only() {
        let metrics = RequestMetrics::new([ApiKey::Produce]);
        for ms in 1..=100 {
            metrics.record(0, Stage::Handling, Duration::from_millis(ms));
            metrics.record(0, Stage::Queue, Duration::from_micros(5));
        }
        metrics.record(1, Stage::Handling, Duration::from_millis(1));
        let summary = metrics.summary();
        assert_eq!(summary.len(), 1);
        let (api, [queue, handling, send, _]) = summary[0];
        assert_eq!(api, ApiKey::Produce);
        assert_eq!(queue.count, 100);
        assert_eq!(queue.p50, 5);
        assert_eq!(handling.count, 100);
        assert!((49_000..=51_000).contains(&handling.p50), "{handling:?}");
        assert!(handling.p99 >= 99_000, "{handling:?}");
        assert_eq!(send.count, 0);
        assert!(
            (5_000_000..=5_100_000).contains(&handling.sum),
            "{handling:?}"
        );
    }

    #[test]
    fn connections_open_now_follows_guards() {
        let stats = Arc::new(ConnectionStats::default());
        let a = stats.open();
        let b = stats.open();
        drop(a);
        assert_eq!(stats.open_now(), 1);
        drop(b);
        assert_eq!(stats.open_now(), 0);
        assert_eq!(stats.created.load(Ordering::Relaxed), 2);
    }
}
