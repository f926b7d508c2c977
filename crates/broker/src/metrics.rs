//! Broker-side request timings per Kafka API, in the spirit of Kafka's `RequestMetrics`
//! (`RequestQueueTimeMs`, `LocalTimeMs` + `RemoteTimeMs`, `ResponseSendTimeMs`):
//!
//! - queue: from the whole frame being read off the socket to its handler starting;
//! - handling: from the handler starting to its reply being ready (an acks=all produce
//!   includes its wait for replication, a fetch its long poll);
//! - send: from the reply being ready to the socket write that carried it completing.
//!
//! Each is an HDR histogram in microseconds, kept until the process ends, for the metrics
//! endpoint to export and for the summary logged at shutdown.

use std::collections::BTreeMap;
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
}

/// Percentiles of one stage, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSummary {
    /// Requests recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
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
    /// By api key: queue, handling and send histograms.
    apis: BTreeMap<i16, [Mutex<Histogram<u64>>; 3]>,
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
            .map(|key| (key as i16, [histogram(), histogram(), histogram()]))
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
    pub fn summary(&self) -> Vec<(ApiKey, [StageSummary; 3])> {
        self.apis
            .iter()
            .filter_map(|(key, histograms)| {
                let stages = [0, 1, 2].map(|i| {
                    let h = histograms[i].lock();
                    StageSummary {
                        count: h.len(),
                        p50: h.value_at_quantile(0.50),
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
        for (api, [queue, handling, send]) in self.summary() {
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
        let (api, [queue, handling, send]) = summary[0];
        assert_eq!(api, ApiKey::Produce);
        assert_eq!(queue.count, 100);
        assert_eq!(queue.p50, 5);
        assert_eq!(handling.count, 100);
        assert!((49_000..=51_000).contains(&handling.p50), "{handling:?}");
        assert!(handling.p99 >= 99_000, "{handling:?}");
        assert_eq!(send.count, 0);
    }
}
