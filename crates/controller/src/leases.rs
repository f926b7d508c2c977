//! Broker leases, kept by the Raft leader only (like KRaft's active controller): when a
//! live broker has not heartbeated for the session timeout, it is due to be fenced.
//! Sans-IO: the caller passes the time in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Last heartbeat per broker, as seen by this leader.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    last_heartbeat: HashMap<i32, Instant>,
}

impl Leases {
    /// Records a heartbeat (or registration) of `broker` at `now`.
    pub(crate) fn renew(&mut self, broker: i32, now: Instant) {
        self.last_heartbeat.insert(broker, now);
    }

    /// Forgets `broker`'s lease (it was fenced; it starts afresh when it registers again).
    pub(crate) fn forget(&mut self, broker: i32) {
        self.last_heartbeat.remove(&broker);
    }

    /// Renews every known lease at `now`: after this leader itself stalled (paused, starved
    /// of CPU), silence during the stall says nothing about the brokers.
    pub(crate) fn renew_all(&mut self, now: Instant) {
        for last in self.last_heartbeat.values_mut() {
            *last = now;
        }
    }

    /// Forgets every lease (leadership was lost; a new term starts from scratch).
    pub(crate) fn clear(&mut self) {
        self.last_heartbeat.clear();
    }

    /// The brokers of `live` whose lease lapsed at `now`. A live broker never heard from
    /// by this leader is given a full session from `now` first (a new leader does not
    /// fence brokers that were heartbeating to its predecessor).
    pub(crate) fn expired(
        &mut self,
        live: impl IntoIterator<Item = i32>,
        now: Instant,
        session_timeout: Duration,
    ) -> Vec<i32> {
        live.into_iter()
            .filter(|id| {
                let last = *self.last_heartbeat.entry(*id).or_insert(now);
                now.saturating_duration_since(last) > session_timeout
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_broker_expires_after_one_session_and_a_heartbeat_renews_it() {
        let start = Instant::now();
        let session = Duration::from_secs(2);
        let mut leases = Leases::default();
        // First sight: a grace period, not an expiry.
        assert!(leases.expired([1, 2], start, session).is_empty());
        leases.renew(1, start + Duration::from_millis(1500));
        let later = start + Duration::from_millis(2500);
        assert_eq!(leases.expired([1, 2], later, session), vec![2]);
        leases.clear();
        assert!(leases.expired([1, 2], later, session).is_empty());
    }

    #[test]
    fn a_stalled_leader_renews_every_lease_instead_of_fencing() {
        let start = Instant::now();
        let session = Duration::from_secs(2);
        let mut leases = Leases::default();
        assert!(leases.expired([1], start, session).is_empty());
        let resumed = start + Duration::from_secs(10);
        leases.renew_all(resumed);
        assert!(leases
            .expired([1], resumed + Duration::from_secs(1), session)
            .is_empty());
        assert_eq!(
            leases.expired([1], resumed + Duration::from_secs(3), session),
            vec![1]
        );
    }
}
