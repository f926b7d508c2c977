//! Client quotas on the request path (Kafka's `ClientQuotaManager`,
//! `ClientRequestQuotaManager`, KIP-13, KIP-124, KIP-219), sans-IO: callers pass the time.
//!
//! [`resolve`] finds the quota that applies to a (user, client id) for one key in Kafka's
//! precedence order over the entities stored in the metadata image. [`ClientQuotas`] keeps
//! one [`rate::SampledRate`] per quota key and *sensor* (the entity that matched, with the
//! client's own user and client id filled in where the entity is a default, as Kafka's
//! `quotaMetricTags`), records usage, and answers the throttle time Kafka would:
//! `(rate − quota) / quota × window`, where the rate is measured after recording. The
//! connection then stays muted for that long (`server/connection.rs`).

pub(crate) mod rate;

use std::collections::HashMap;

use controller::quotas::{EntityName, QuotaEntity, QuotaKey};
use controller::MetadataImage;
use parking_lot::Mutex;

use rate::{SampledRate, TokenBucket, Window};

/// Sensors unused for this long are dropped (Kafka's quota sensors expire after an hour of
/// inactivity).
const SENSOR_EXPIRY_MS: u64 = 3_600_000;

/// Which rate a sensor measures and for whom: the user and client id parts that the
/// matching entity has (empty when it has none), with defaults replaced by the client's
/// own, so each user (or client) under a default quota has its own rate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SensorKey {
    pub(crate) key: QuotaKey,
    pub(crate) user: String,
    pub(crate) client_id: String,
}

/// The quota that applies to a client for one key, and the sensor that measures it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Applied {
    /// The bound (bytes/s, percent, or mutations/s).
    pub(crate) bound: f64,
    /// Where usage is recorded.
    pub(crate) sensor: SensorKey,
}

/// The quota for `key` of a client authenticated as `user` (the principal's name,
/// `ANONYMOUS` when unauthenticated) sending `client_id`, in Kafka's precedence order:
/// `/users/<user>/clients/<client-id>`, `/users/<user>/clients/<default>`, `/users/<user>`,
/// `/users/<default>/clients/<client-id>`, `/users/<default>/clients/<default>`,
/// `/users/<default>`, `/clients/<client-id>`, `/clients/<default>`. The first entity that
/// sets `key` wins; `None` when none does (no quota).
pub(crate) fn resolve(
    image: &MetadataImage,
    user: &str,
    client_id: &str,
    key: QuotaKey,
) -> Option<Applied> {
    let named = |s: &str| Some(EntityName::Named(s.to_owned()));
    let default = || Some(EntityName::Default);
    // (entity, whether the sensor is per user, whether it is per client id)
    let levels = [
        (named(user), named(client_id), true, true),
        (named(user), default(), true, true),
        (named(user), None, true, false),
        (default(), named(client_id), true, true),
        (default(), default(), true, true),
        (default(), None, true, false),
        (None, named(client_id), false, true),
        (None, default(), false, true),
    ];
    levels
        .into_iter()
        .find_map(|(user_part, client_part, per_user, per_client)| {
            let entity = QuotaEntity {
                user: user_part,
                client_id: client_part,
            };
            let bound = *image.client_quota(&entity)?.get(key.name())?;
            Some(Applied {
                bound,
                sensor: SensorKey {
                    key,
                    user: if per_user {
                        user.to_owned()
                    } else {
                        String::new()
                    },
                    client_id: if per_client {
                        client_id.to_owned()
                    } else {
                        String::new()
                    },
                },
            })
        })
}

/// Milliseconds on the process's monotonic clock (the time quota rates are recorded at).
pub(crate) fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// The quota for `key` of a client (its principal and client id), if the image sets one.
/// Cheap when no quota is set at all.
pub(crate) fn lookup(
    image: &MetadataImage,
    principal: &str,
    client_id: &str,
    key: QuotaKey,
) -> Option<Applied> {
    if !image.has_client_quotas() {
        return None;
    }
    resolve(image, quota_user(principal), client_id, key)
}

/// The user name quotas use for a principal (`User:alice` → `alice`).
pub(crate) fn quota_user(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

#[derive(Debug)]
struct Sensor {
    rate: SampledRate,
    /// Controller mutations (KIP-599) are counted in a token bucket instead of the rate.
    bucket: Option<TokenBucket>,
    last_used_ms: u64,
    /// Throttle time handed out, in ms, and how many requests were throttled.
    throttle_ms_total: u64,
    throttled: u64,
}

/// One sensor's throttle counters, for the metrics page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThrottleStats {
    /// Kafka's quota type (`Produce`, `Fetch`, `Request`, `ControllerMutation`).
    pub(crate) quota: &'static str,
    /// The sensor's user (empty when the quota is not per user).
    pub(crate) user: String,
    /// The sensor's client id (empty when the quota is not per client id).
    pub(crate) client_id: String,
    /// Throttle time handed out, in milliseconds.
    pub(crate) throttle_ms_total: u64,
    /// Requests throttled.
    pub(crate) throttled: u64,
}

/// The broker's quota rates (see the module documentation).
#[derive(Debug)]
pub(crate) struct ClientQuotas {
    window: Window,
    sensors: Mutex<Sensors>,
}

#[derive(Debug, Default)]
struct Sensors {
    by_key: HashMap<SensorKey, Sensor>,
    last_expiry_ms: u64,
}

impl ClientQuotas {
    /// Rates sampled over `window`.
    pub(crate) fn new(window: Window) -> ClientQuotas {
        ClientQuotas {
            window,
            sensors: Mutex::new(Sensors::default()),
        }
    }

    /// The sampling window.
    pub(crate) fn window(&self) -> Window {
        self.window
    }

    /// Records `value` against `applied`'s sensor at `now_ms` and returns the throttle time
    /// in milliseconds (0 within the quota). `max_throttle_ms` caps it (Kafka caps request
    /// quota throttles at one window, byte rates not at all).
    pub(crate) fn record(
        &self,
        applied: &Applied,
        value: f64,
        now_ms: u64,
        max_throttle_ms: Option<u64>,
    ) -> u64 {
        let mut sensors = self.sensors.lock();
        let sensor = sensors.used(applied, now_ms);
        sensor.rate.record(self.window, value, now_ms);
        let measured = sensor.rate.measure(self.window, now_ms);
        let window_size = sensor.rate.window_size(self.window, now_ms);
        let throttle = rate::throttle_time_ms(measured, applied.bound, window_size);
        let throttle = max_throttle_ms.map_or(throttle, |max| throttle.min(max));
        if throttle > 0 {
            sensor.throttle_ms_total += throttle;
            sensor.throttled += 1;
        }
        throttle
    }

    /// Whether the client's controller mutation quota (`applied`, KIP-599) is exceeded at
    /// `now_ms`, as the time (ms) until it is not (0: not exceeded): its token bucket is
    /// below zero, so a strict request (CreateTopics v6+, CreatePartitions v3+, DeleteTopics
    /// v5+) is refused THROTTLING_QUOTA_EXCEEDED.
    pub(crate) fn mutations_exceeded(&self, applied: &Applied, now_ms: u64) -> u64 {
        let window = self.window;
        let mut sensors = self.sensors.lock();
        let sensor = sensors.used(applied, now_ms);
        sensor
            .bucket
            .get_or_insert_with(|| TokenBucket::full(applied.bound, window, now_ms))
            .deficit_ms(applied.bound, window, now_ms)
    }

    /// Takes `mutations` (partitions created or deleted) from `applied`'s token bucket at
    /// `now_ms`; the throttle time until the bucket is back at zero (0 within the quota).
    pub(crate) fn record_mutations(&self, applied: &Applied, mutations: f64, now_ms: u64) -> u64 {
        let window = self.window;
        let mut sensors = self.sensors.lock();
        let sensor = sensors.used(applied, now_ms);
        let throttle = sensor
            .bucket
            .get_or_insert_with(|| TokenBucket::full(applied.bound, window, now_ms))
            .take(applied.bound, window, mutations, now_ms);
        if throttle > 0 {
            sensor.throttle_ms_total += throttle;
            sensor.throttled += 1;
        }
        throttle
    }

    /// Every live sensor's throttle counters (a sensor idle for an hour is dropped, and its
    /// counters with it).
    pub(crate) fn throttle_stats(&self) -> Vec<ThrottleStats> {
        let sensors = self.sensors.lock();
        let mut stats: Vec<ThrottleStats> = sensors
            .by_key
            .iter()
            .map(|(key, sensor)| ThrottleStats {
                quota: match key.key {
                    QuotaKey::ProducerByteRate => "Produce",
                    QuotaKey::ConsumerByteRate => "Fetch",
                    QuotaKey::RequestPercentage => "Request",
                    QuotaKey::ControllerMutationRate => "ControllerMutation",
                },
                user: key.user.clone(),
                client_id: key.client_id.clone(),
                throttle_ms_total: sensor.throttle_ms_total,
                throttled: sensor.throttled,
            })
            .collect();
        stats.sort_by(|a, b| {
            (a.quota, &a.user, &a.client_id).cmp(&(b.quota, &b.user, &b.client_id))
        });
        stats
    }

    /// Takes back `value` recorded at `now_ms` (a throttled fetch returns no records, so
    /// the bytes it read do not count, as Kafka's `unrecordQuotaSensor`).
    pub(crate) fn unrecord(&self, applied: &Applied, value: f64, now_ms: u64) {
        if let Some(sensor) = self.sensors.lock().by_key.get_mut(&applied.sensor) {
            sensor.rate.record(self.window, -value, now_ms);
        }
    }

    /// The most bytes a fetch may return under `applied` (Kafka's
    /// `getMaxValueInQuotaWindow`: the quota over `samples − 1` windows).
    pub(crate) fn max_value_in_window(&self, applied: &Applied) -> f64 {
        applied.bound
            * (self.window.samples.saturating_sub(1)) as f64
            * (self.window.window_ms as f64 / 1000.0)
    }

    /// Number of live sensors.
    #[cfg(test)]
    fn sensor_count(&self) -> usize {
        self.sensors.lock().by_key.len()
    }
}

impl Sensors {
    /// `applied`'s sensor, created if new, marked used at `now_ms` (idle ones expire first).
    fn used(&mut self, applied: &Applied, now_ms: u64) -> &mut Sensor {
        self.expire(now_ms);
        let sensor = self
            .by_key
            .entry(applied.sensor.clone())
            .or_insert_with(|| Sensor {
                rate: SampledRate::default(),
                bucket: None,
                last_used_ms: now_ms,
                throttle_ms_total: 0,
                throttled: 0,
            });
        sensor.last_used_ms = now_ms;
        sensor
    }

    fn expire(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_expiry_ms) < 60_000 {
            return;
        }
        self.last_expiry_ms = now_ms;
        self.by_key.retain(|_, s| {
            let last = s.rate.last_start_ms().unwrap_or(0).max(s.last_used_ms);
            now_ms.saturating_sub(last) < SENSOR_EXPIRY_MS
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use controller::Command;

    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        let part = |p: Option<Option<&str>>| p.map(|n| EntityName::from_wire(n));
        QuotaEntity {
            user: part(user),
            client_id: part(client),
        }
    }

    fn set(image: &mut MetadataImage, entity: QuotaEntity, value: f64) {
        image
            .apply(&Command::AlterClientQuotas {
                entity,
                changes: BTreeMap::from([("producer_byte_rate".to_owned(), Some(value))]),
            })
            .unwrap();
    }

    /// The eight levels, each set to its rank; removing them one by one from the most
    /// specific shows each level winning over every level below it.
    #[test]
    fn precedence_follows_kafkas_order() {
        let levels = [
            entity(Some(Some("alice")), Some(Some("app"))),
            entity(Some(Some("alice")), Some(None)),
            entity(Some(Some("alice")), None),
            entity(Some(None), Some(Some("app"))),
            entity(Some(None), Some(None)),
            entity(Some(None), None),
            entity(None, Some(Some("app"))),
            entity(None, Some(None)),
        ];
        let mut image = MetadataImage::new();
        for (rank, level) in levels.iter().enumerate() {
            set(&mut image, level.clone(), (rank + 1) as f64);
        }
        let sensors = [
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("", "app"),
            ("", "app"),
        ];
        for (rank, level) in levels.iter().enumerate() {
            let applied = resolve(&image, "alice", "app", QuotaKey::ProducerByteRate).unwrap();
            assert_eq!(applied.bound, (rank + 1) as f64, "level {level}");
            assert_eq!(
                (
                    applied.sensor.user.as_str(),
                    applied.sensor.client_id.as_str()
                ),
                sensors[rank],
                "level {level}"
            );
            image
                .apply(&Command::AlterClientQuotas {
                    entity: level.clone(),
                    changes: BTreeMap::from([("producer_byte_rate".to_owned(), None)]),
                })
                .unwrap();
        }
        assert_eq!(
            resolve(&image, "alice", "app", QuotaKey::ProducerByteRate),
            None
        );
    }

    #[test]
    fn keys_resolve_independently_and_other_clients_are_unaffected() {
        let mut image = MetadataImage::new();
        set(&mut image, entity(None, Some(Some("capped"))), 1024.0);
        assert!(resolve(&image, "ANONYMOUS", "capped", QuotaKey::ProducerByteRate).is_some());
        assert_eq!(
            resolve(&image, "ANONYMOUS", "capped", QuotaKey::ConsumerByteRate),
            None
        );
        assert_eq!(
            resolve(&image, "ANONYMOUS", "free", QuotaKey::ProducerByteRate),
            None
        );
        assert_eq!(quota_user("User:alice"), "alice");
    }

    #[test]
    fn a_client_over_its_quota_is_throttled_until_its_rate_is_back_at_the_bound() {
        let quotas = ClientQuotas::new(Window::default());
        let applied = Applied {
            bound: 1000.0,
            sensor: SensorKey {
                key: QuotaKey::ProducerByteRate,
                user: String::new(),
                client_id: "c".into(),
            },
        };
        // 10,000 bytes at t=0 are measured over 10 s: exactly the bound.
        assert_eq!(quotas.record(&applied, 10_000.0, 0, None), 0);
        // 2,000 more: 12,000 over 10 s is 20% over; 2 s of silence restores the bound.
        assert_eq!(quotas.record(&applied, 2_000.0, 0, None), 2_000);
        // 12 s later the first window (older than 11 windows) has expired.
        assert_eq!(quotas.record(&applied, 0.0, 12_000, None), 0);
        // A cap applies.
        assert_eq!(quotas.record(&applied, 1e9, 12_000, Some(1000)), 1000);
        quotas.unrecord(&applied, 1e9, 12_000);
        assert_eq!(quotas.record(&applied, 0.0, 12_000, None), 0);
        assert_eq!(quotas.sensor_count(), 1);
        let stats = quotas.throttle_stats();
        assert_eq!(
            (stats[0].quota, stats[0].client_id.as_str()),
            ("Produce", "c")
        );
        assert_eq!((stats[0].throttle_ms_total, stats[0].throttled), (3_000, 2));
        // Idle sensors expire after an hour.
        let other = Applied {
            sensor: SensorKey {
                client_id: "d".into(),
                ..applied.sensor.clone()
            },
            ..applied.clone()
        };
        quotas.record(&other, 0.0, 12_000 + SENSOR_EXPIRY_MS + 1, None);
        assert_eq!(quotas.sensor_count(), 1);
        assert!((quotas.max_value_in_window(&applied) - 10_000.0).abs() < 1e-9);
    }
}
