//! Client quotas on the request path: recording what Produce, Fetch and every request cost
//! against the quotas of [`crate::quota`], and what a throttled request answers (KIP-219:
//! the reply goes out at once with `throttle_time_ms`, then the connection is muted for
//! that long, see `server/connection.rs`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use controller::quotas::QuotaKey;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::protocol::Encodable;

use crate::quota::{self, Applied};
use crate::server::Peer;
use crate::Broker;

/// The replica id of a fetch (≥ 0 for a follower).
pub(super) fn fetch_replica_id(request: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    }
}

/// Records a produce request of `bytes` against the client's `producer_byte_rate` and
/// returns its throttle time (0 without a quota); the connection is muted that long.
pub(super) fn produce(broker: &Broker, peer: &Peer, client_id: &str, bytes: usize) -> i32 {
    let image = broker.image();
    let Some(applied) = quota::lookup(
        &image,
        &peer.principal,
        client_id,
        QuotaKey::ProducerByteRate,
    ) else {
        return 0;
    };
    let throttle = broker
        .quotas
        .record(&applied, bytes as f64, quota::clock_ms(), None);
    peer.throttle(throttle);
    clamp(throttle)
}

/// The `consumer_byte_rate` quota of a consumer's fetch, if any; the fetch's `max_bytes`
/// is capped at what the quota allows over its window (Kafka's
/// `getMaxValueInQuotaWindow`), and `min_bytes` at that.
pub(super) fn fetch_quota(
    broker: &Broker,
    peer: &Peer,
    client_id: &str,
    request: &mut FetchRequest,
    version: i16,
) -> Option<Applied> {
    if fetch_replica_id(request, version) >= 0 {
        return None;
    }
    let image = broker.image();
    let applied = quota::lookup(
        &image,
        &peer.principal,
        client_id,
        QuotaKey::ConsumerByteRate,
    )?;
    let cap = broker
        .quotas
        .max_value_in_window(&applied)
        .min(i32::MAX as f64) as i32;
    request.max_bytes = request.max_bytes.min(cap.max(1));
    request.min_bytes = request.min_bytes.min(request.max_bytes);
    Some(applied)
}

/// Records a fetch response against its quota. Within the quota the response goes as it
/// is; over it, as Kafka does, the bytes are taken back and the client gets an empty
/// response carrying the throttle time, and the connection is muted that long.
pub(super) fn throttle_fetch(
    broker: &Broker,
    peer: &Peer,
    applied: &Applied,
    response: FetchResponse,
    version: i16,
) -> FetchResponse {
    let size = response.compute_size(version).unwrap_or(0) as f64;
    let now = quota::clock_ms();
    let throttle = broker.quotas.record(applied, size, now, None);
    if throttle == 0 {
        return response;
    }
    broker.quotas.unrecord(applied, size, now);
    peer.throttle(throttle);
    FetchResponse::default()
        .with_throttle_time_ms(clamp(throttle))
        .with_session_id(response.session_id)
}

/// Records `busy` (a request's time on the worker) against the client's
/// `request_percentage`: a percentage of one thread's time per second, as Kafka's
/// `ClientRequestQuotaManager`, whose throttle is capped at one quota window. The throttle
/// mutes the connection; it is not reported in the response.
pub(super) fn request_time(broker: &Broker, peer: &Peer, client_id: &str, busy: Duration) {
    let image = broker.image();
    let Some(applied) = quota::lookup(
        &image,
        &peer.principal,
        client_id,
        QuotaKey::RequestPercentage,
    ) else {
        return;
    };
    let percent_seconds = busy.as_nanos() as f64 * 100.0 / 1e9;
    let cap = broker.quotas.window().window_ms;
    let throttle = broker
        .quotas
        .record(&applied, percent_seconds, quota::clock_ms(), Some(cap));
    peer.throttle(throttle);
}

/// KIP-599's controller mutation quota of one CreateTopics, CreatePartitions or
/// DeleteTopics: each partition created or deleted is a mutation taken from the client's
/// `controller_mutation_rate` token bucket, before the change is made. A strict request
/// (the versions that know THROTTLING_QUOTA_EXCEEDED) has each topic refused while the
/// bucket is below zero; an older one is never refused, only throttled. The handler takes
/// from it topic by topic (`&mut`), before any change is made.
pub(super) struct MutationQuota<'a> {
    broker: &'a Broker,
    applied: Option<Applied>,
    strict: bool,
    /// The longest throttle (ms) any topic of the request met.
    throttle_ms: u64,
}

impl<'a> MutationQuota<'a> {
    /// The quota of a request from `peer` with `client_id`; `strict` as the request's
    /// version says.
    pub(super) fn new(broker: &'a Broker, peer: &Peer, client_id: &str, strict: bool) -> Self {
        let image = broker.image();
        let applied = quota::lookup(
            &image,
            &peer.principal,
            client_id,
            QuotaKey::ControllerMutationRate,
        );
        MutationQuota {
            broker,
            applied,
            strict,
            throttle_ms: 0,
        }
    }

    /// Takes `mutations` for one topic, or THROTTLING_QUOTA_EXCEEDED (taking nothing) when
    /// the request is strict and the bucket is below zero.
    pub(super) fn take(&mut self, mutations: usize) -> Result<(), ResponseError> {
        let Some(applied) = &self.applied else {
            return Ok(());
        };
        let now = quota::clock_ms();
        if self.strict {
            let exceeded = self.broker.quotas.mutations_exceeded(applied, now);
            if exceeded > 0 {
                self.throttle_ms = self.throttle_ms.max(exceeded);
                return Err(ResponseError::ThrottlingQuotaExceeded);
            }
        }
        let throttle = self
            .broker
            .quotas
            .record_mutations(applied, mutations as f64, now);
        self.throttle_ms = self.throttle_ms.max(throttle);
        Ok(())
    }

    /// The request's throttle time (ms), for its response; the connection is muted that long.
    pub(super) fn finish(self, peer: &Peer) -> i32 {
        peer.throttle(self.throttle_ms);
        clamp(self.throttle_ms)
    }
}

/// The message of THROTTLING_QUOTA_EXCEEDED, as Kafka words it.
pub(super) const THROTTLED: &str = "The throttling quota has been exceeded.";

fn clamp(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// A future that adds up the time spent in its inner future's polls (the request's time
/// on the worker, not its waits).
pub(super) struct PollTime<'a, F> {
    inner: Pin<&'a mut F>,
    busy: Duration,
}

impl<'a, F: Future> PollTime<'a, F> {
    pub(super) fn new(inner: Pin<&'a mut F>) -> Self {
        PollTime {
            inner,
            busy: Duration::ZERO,
        }
    }
}

impl<F: Future> Future for PollTime<'_, F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = Instant::now();
        let polled = self.inner.as_mut().poll(cx);
        self.busy += started.elapsed();
        polled.map(|out| (out, self.busy))
    }
}
