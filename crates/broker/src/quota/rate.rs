//! Kafka's windowed `Rate` (`org.apache.kafka.common.metrics.stats.Rate` over a
//! `SampledStat` of sums), sans-IO: the caller passes the time in milliseconds.
//!
//! Contract, as Kafka's: a rate keeps at most `samples` windows of `window_ms` each; a
//! window older than `samples × window_ms` is reset before it is read; the rate is the sum
//! of the kept windows over the elapsed time since the oldest window began, that time
//! counted as at least `samples − 1` whole windows (so a burst right after a quiet period
//! is not measured over a few milliseconds) and at least 1 ms.

/// How quota rates are sampled (Kafka's `quota.window.num`, `quota.window.size.seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Number of samples kept (Kafka's `quota.window.num`, default 11).
    pub(crate) samples: usize,
    /// Length of one sample in milliseconds (Kafka's `quota.window.size.seconds` × 1000,
    /// default 1 s).
    pub(crate) window_ms: u64,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            samples: 11,
            window_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When the sample's window began.
    start_ms: u64,
    value: f64,
}

/// A rate per second over sampled windows (see the module's contract).
#[derive(Debug, Default)]
pub(crate) struct SampledRate {
    samples: Vec<Sample>,
    current: usize,
}

impl SampledRate {
    /// Adds `value` at `now_ms` (a negative value takes back an earlier record, as Kafka's
    /// `unrecordQuotaSensor` does).
    pub(crate) fn record(&mut self, window: Window, value: f64, now_ms: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample {
                start_ms: now_ms,
                value: 0.0,
            });
            self.current = 0;
        }
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= window.window_ms {
            self.current = (self.current + 1) % window.samples.max(1);
            let fresh = Sample {
                start_ms: now_ms,
                value: 0.0,
            };
            if self.current >= self.samples.len() {
                self.samples.push(fresh);
            } else {
                self.samples[self.current] = fresh;
            }
        }
        self.samples[self.current].value += value;
    }

    /// The rate per second at `now_ms`.
    pub(crate) fn measure(&mut self, window: Window, now_ms: u64) -> f64 {
        let elapsed = self.window_size(window, now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (elapsed as f64 / 1000.0)
    }

    /// The time in milliseconds the rate is measured over at `now_ms` (Kafka's
    /// `Rate.windowSize`).
    pub(crate) fn window_size(&mut self, window: Window, now_ms: u64) -> u64 {
        self.purge(window, now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / window.window_ms.max(1);
        let min_full = window.samples.saturating_sub(1) as u64;
        if full < min_full {
            elapsed += (min_full - full) * window.window_ms;
        }
        elapsed.max(1)
    }

    /// When the last sample began (for expiring idle rates).
    pub(crate) fn last_start_ms(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.start_ms).max()
    }

    fn purge(&mut self, window: Window, now_ms: u64) {
        let expire = window.samples as u64 * window.window_ms;
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.start_ms) >= expire {
                *sample = Sample {
                    start_ms: now_ms,
                    value: 0.0,
                };
            }
        }
    }
}

/// Kafka's `QuotaUtils.throttleTime`: how long a client measured at `rate` against `bound`
/// must stay silent so that its rate over `window_size_ms` comes back to the bound,
/// `(rate − bound) / bound × window_size_ms`, rounded; 0 when within the bound.
pub(crate) fn throttle_time_ms(rate: f64, bound: f64, window_size_ms: u64) -> u64 {
    if rate <= bound {
        return 0;
    }
    if bound <= 0.0 {
        // Kafka divides by the bound; a zero quota gives an unbounded throttle. Cap it at
        // the whole sampled period so the arithmetic stays finite.
        return window_size_ms;
    }
    ((rate - bound) / bound * window_size_ms as f64).round() as u64
}

/// Kafka's `TokenBucket` of controller mutation quotas (KIP-599): it holds at most
/// `bound × samples × window` permits and refills at `bound` per second; taking permits may
/// leave it below zero, and while it is below zero the quota is exceeded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub(crate) fn full(bound: f64, window: Window, now_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: Self::burst(bound, window),
            last_ms: now_ms,
        }
    }

    fn burst(bound: f64, window: Window) -> f64 {
        bound * window.samples as f64 * window.window_ms as f64 / 1000.0
    }

    fn refill(&mut self, bound: f64, window: Window, now_ms: u64) {
        let elapsed_s = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + bound * elapsed_s).min(Self::burst(bound, window));
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// How long (ms) from `now_ms` until the bucket is back at zero: 0 unless it is below
    /// zero, i.e. the quota is exceeded.
    pub(crate) fn deficit_ms(&mut self, bound: f64, window: Window, now_ms: u64) -> u64 {
        self.refill(bound, window, now_ms);
        if self.tokens >= 0.0 {
            0
        } else if bound <= 0.0 {
            window.window_ms * window.samples as u64
        } else {
            (-self.tokens / bound * 1000.0).ceil() as u64
        }
    }

    /// Takes `permits` at `now_ms`; the [`Self::deficit_ms`] after.
    pub(crate) fn take(&mut self, bound: f64, window: Window, permits: f64, now_ms: u64) -> u64 {
        self.refill(bound, window, now_ms);
        self.tokens -= permits;
        self.deficit_ms(bound, window, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bucket_allows_a_burst_then_refills_at_the_bound() {
        // 2 mutations/s over 11 one-second windows: a burst of 22.
        let mut bucket = TokenBucket::full(2.0, W, 0);
        assert_eq!(bucket.deficit_ms(2.0, W, 0), 0);
        assert_eq!(bucket.take(2.0, W, 20.0, 0), 0);
        assert_eq!(bucket.deficit_ms(2.0, W, 0), 0, "2 tokens left");
        // Going below zero is allowed once; the throttle is the time to refill to zero.
        assert_eq!(bucket.take(2.0, W, 10.0, 0), 4_000);
        assert_eq!(bucket.deficit_ms(2.0, W, 3_000), 1_000);
        assert_eq!(bucket.deficit_ms(2.0, W, 4_000), 0);
        // It never holds more than the burst.
        assert_eq!(bucket.deficit_ms(2.0, W, 1_000_000), 0);
        assert_eq!(bucket.take(2.0, W, 22.0, 1_000_000), 0);
        assert_eq!(bucket.take(2.0, W, 1.0, 1_000_000), 500);
    }

    const W: Window = Window {
        samples: 11,
        window_ms: 1000,
    };

    #[test]
    fn a_fresh_rate_is_measured_over_at_least_ten_windows() {
        let mut rate = SampledRate::default();
        rate.record(W, 10_000.0, 5_000);
        // One window begun now: elapsed 0 ms, counted as 10 whole windows.
        assert_eq!(rate.window_size(W, 5_000), 10_000);
        assert!((rate.measure(W, 5_000) - 1_000.0).abs() < 1e-9);
        // 500 ms later: 10.5 s.
        assert_eq!(rate.window_size(W, 5_500), 10_500);
    }

    #[test]
    fn windows_roll_over_and_old_ones_expire() {
        let mut rate = SampledRate::default();
        for second in 0..30u64 {
            rate.record(W, 100.0, second * 1000);
        }
        // 11 windows kept (19 s to 29 s), measured over 10 s of elapsed time plus the
        // current window's 0 ms: 1,100 bytes over 10 s.
        assert_eq!(rate.window_size(W, 29_000), 10_000);
        assert!((rate.measure(W, 29_000) - 110.0).abs() < 1e-9);
        // Long after, everything has expired.
        assert_eq!(rate.measure(W, 100_000), 0.0);
    }

    #[test]
    fn negative_records_take_back_earlier_ones() {
        let mut rate = SampledRate::default();
        rate.record(W, 5_000.0, 0);
        rate.record(W, -5_000.0, 10);
        assert_eq!(rate.measure(W, 10), 0.0);
    }

    #[test]
    fn throttle_time_brings_the_rate_back_to_the_bound() {
        assert_eq!(throttle_time_ms(900.0, 1000.0, 10_000), 0);
        assert_eq!(throttle_time_ms(1000.0, 1000.0, 10_000), 0);
        // 20% over a 1,000/s bound over 10 s: 2 s of silence brings 12,000 bytes over 12 s
        // back to 1,000/s.
        assert_eq!(throttle_time_ms(1200.0, 1000.0, 10_000), 2_000);
        assert_eq!(throttle_time_ms(1.0, 0.0, 10_000), 10_000);
    }
}
