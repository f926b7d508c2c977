//! This node's view of one partition's replicas, as Kafka's `Partition` keeps it: the role
//! the metadata gives this node and, on the leader, each follower's progress, from which the
//! high watermark and ISR changes follow. Sans-IO: callers pass the time and the log end.
//!
//! The high watermark counts the *maximal* ISR: the ISR in metadata plus replicas whose
//! addition was proposed but not yet committed, so a committed ISR never holds a replica
//! missing a record below the high watermark. A removal counts once it is in metadata.

use std::collections::HashMap;

use controller::PartitionMeta;

/// What applying new metadata did to this node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Same leader and epoch as before (the ISR or replicas may have changed).
    Unchanged,
    /// This node leads from now on, in a new leader epoch.
    BecameLeader,
    /// Another node (or none) leads, in a new leader epoch.
    BecameFollower,
}

/// A follower's progress as the leader sees it.
#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// The offset the follower asked for last: everything below it is on its log. -1 until
    /// its first fetch in this leader epoch.
    log_end: i64,
    /// When the follower was last caught up with the leader's log end.
    caught_up_ms: i64,
    /// The leader's log end and the time at the follower's previous fetch.
    previous_fetch: (i64, i64),
}

/// One partition's replicas from this node's point of view.
#[derive(Debug)]
pub(crate) struct ReplicaSet {
    node_id: i32,
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// An ISR change submitted to the controller and not yet seen in metadata.
    proposed: Option<Vec<i32>>,
    followers: HashMap<i32, FollowerProgress>,
    /// The first offset of the current leader epoch on this (leading) node.
    epoch_start_offset: i64,
}

impl ReplicaSet {
    /// A partition this node knows nothing about yet (no leader, epoch -1).
    pub(crate) fn new(node_id: i32) -> Self {
        Self {
            node_id,
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            proposed: None,
            followers: HashMap::new(),
            epoch_start_offset: 0,
        }
    }

    /// Takes the partition's metadata. `log_end` is this node's log end offset and `now_ms`
    /// the time; a new leader treats its in-sync followers as caught up as of now.
    pub(crate) fn apply(&mut self, meta: &PartitionMeta, log_end: i64, now_ms: i64) -> Transition {
        let new_epoch = meta.leader_epoch != self.leader_epoch || meta.leader != self.leader;
        if meta.partition_epoch != self.partition_epoch {
            self.proposed = None;
        }
        self.leader = meta.leader;
        self.leader_epoch = meta.leader_epoch;
        self.partition_epoch = meta.partition_epoch;
        self.replicas.clone_from(&meta.replicas);
        self.isr.clone_from(&meta.isr);
        if !new_epoch {
            self.followers.retain(|id, _| meta.replicas.contains(id));
            if self.is_leader() {
                // Replicas added by a reassignment start untracked and out of sync.
                for &id in meta.replicas.iter().filter(|&&id| id != self.node_id) {
                    self.followers.entry(id).or_insert(FollowerProgress {
                        log_end: -1,
                        caught_up_ms: 0,
                        previous_fetch: (-1, 0),
                    });
                }
            }
            return Transition::Unchanged;
        }
        self.proposed = None;
        self.followers.clear();
        if self.leader != self.node_id {
            return Transition::BecameFollower;
        }
        self.epoch_start_offset = log_end;
        for &id in self.replicas.iter().filter(|&&id| id != self.node_id) {
            let caught_up_ms = if self.isr.contains(&id) { now_ms } else { 0 };
            self.followers.insert(
                id,
                FollowerProgress {
                    log_end: -1,
                    caught_up_ms,
                    previous_fetch: (-1, 0),
                },
            );
        }
        Transition::BecameLeader
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leader == self.node_id
    }

    pub(crate) fn leader(&self) -> i32 {
        self.leader
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Where this leader's epoch starts in its log (meaningful on the leader only).
    pub(crate) fn epoch_start_offset(&self) -> i64 {
        self.epoch_start_offset
    }

    /// The ISR as metadata has it.
    pub(crate) fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    pub(crate) fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// Records a fetch by follower `replica` at `fetch_offset` while the leader's log ends
    /// at `leader_end`. Kafka's rule: the follower was caught up now if it asked for the log
    /// end, or at its previous fetch if it asked for what was the log end then. Returns false
    /// when `replica` is not a follower of this leader.
    pub(crate) fn record_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(progress) = self.followers.get_mut(&replica) else {
            return false;
        };
        if fetch_offset >= leader_end {
            progress.caught_up_ms = now_ms;
        } else if fetch_offset >= progress.previous_fetch.0 && progress.previous_fetch.0 >= 0 {
            progress.caught_up_ms = progress.caught_up_ms.max(progress.previous_fetch.1);
        }
        progress.log_end = fetch_offset;
        progress.previous_fetch = (leader_end, now_ms);
        true
    }

    /// The high watermark the replicas allow: the smallest log end over the maximal ISR
    /// (this leader's own being `leader_end`); `None` while an in-sync follower has not
    /// fetched in this leader epoch, or when this node does not lead.
    pub(crate) fn high_watermark(&self, leader_end: i64) -> Option<i64> {
        if !self.is_leader() {
            return None;
        }
        let mut hw = leader_end;
        for id in self.maximal_isr().filter(|&id| id != self.node_id) {
            let end = self.followers.get(&id).map_or(-1, |f| f.log_end);
            if end < 0 {
                return None;
            }
            hw = hw.min(end);
        }
        Some(hw)
    }

    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let added = self
            .proposed
            .iter()
            .flatten()
            .filter(|id| !self.isr.contains(id));
        self.isr.iter().chain(added).copied()
    }

    /// The ISR change this leader should ask for now, if any: followers not caught up
    /// within `lag_ms` leave; followers that reached the high watermark and the start of
    /// this leader epoch join if `eligible` (a live broker). `None` while a proposal is
    /// outstanding.
    pub(crate) fn isr_change(
        &self,
        now_ms: i64,
        lag_ms: i64,
        high_watermark: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<Vec<i32>> {
        if !self.is_leader() || self.proposed.is_some() {
            return None;
        }
        let mut isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|&id| {
                id == self.node_id
                    || self
                        .followers
                        .get(&id)
                        .is_some_and(|f| now_ms - f.caught_up_ms <= lag_ms)
            })
            .collect();
        for &id in &self.replicas {
            let Some(f) = self.followers.get(&id) else {
                continue;
            };
            let caught_up = f.log_end >= high_watermark
                && f.log_end >= self.epoch_start_offset
                && now_ms - f.caught_up_ms <= lag_ms;
            if !isr.contains(&id) && caught_up && eligible(id) {
                isr.push(id);
            }
        }
        (isr != self.isr).then_some(isr)
    }

    /// Notes that `isr` was submitted; the partition epoch it was based on is returned.
    pub(crate) fn propose(&mut self, isr: Vec<i32>) -> (i32, i32) {
        self.proposed = Some(isr);
        (self.leader_epoch, self.partition_epoch)
    }

    /// Forgets a proposal the controller refused.
    pub(crate) fn abandon_proposal(&mut self) {
        self.proposed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(leader: i32, epoch: i32, isr: &[i32]) -> PartitionMeta {
        PartitionMeta {
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    #[test]
    fn high_watermark_waits_for_every_in_sync_follower() {
        let mut set = ReplicaSet::new(1);
        assert_eq!(
            set.apply(&meta(1, 1, &[1, 2, 3]), 10, 0),
            Transition::BecameLeader
        );
        assert_eq!(set.high_watermark(12), None);
        set.record_fetch(2, 12, 12, 1);
        assert_eq!(set.high_watermark(12), None);
        set.record_fetch(3, 11, 12, 1);
        assert_eq!(set.high_watermark(12), Some(11));
        set.apply(&meta(1, 1, &[1, 2]), 12, 2);
        assert_eq!(set.high_watermark(12), Some(12));
    }

    #[test]
    fn laggards_leave_and_caught_up_followers_join() {
        let mut set = ReplicaSet::new(1);
        set.apply(&meta(1, 1, &[1, 2, 3]), 0, 0);
        set.record_fetch(2, 0, 0, 100);
        set.record_fetch(3, 0, 0, 100);
        set.record_fetch(2, 5, 10, 900);
        set.record_fetch(3, 10, 10, 900);
        // Follower 2 was last caught up at 100 (its fetch at 900 asked for 5 < 10).
        assert_eq!(set.isr_change(1200, 1000, 5, |_| true), Some(vec![1, 3]));
        let (leader_epoch, partition_epoch) = set.propose(vec![1, 3]);
        assert_eq!((leader_epoch, partition_epoch), (1, 1));
        assert_eq!(set.isr_change(1200, 1000, 5, |_| true), None);
        let mut shrunk = meta(1, 1, &[1, 3]);
        shrunk.partition_epoch = 2;
        set.apply(&shrunk, 10, 1200);
        assert_eq!(set.high_watermark(10), Some(10));
        // Follower 2 catches up and is proposed back; the proposal counts for the HW.
        set.record_fetch(2, 10, 10, 1300);
        assert_eq!(
            set.isr_change(1300, 1000, 10, |_| true),
            Some(vec![1, 3, 2])
        );
        set.propose(vec![1, 3, 2]);
        set.record_fetch(2, 10, 12, 1400);
        assert_eq!(set.high_watermark(12), Some(10));
    }

    #[test]
    fn a_new_leader_epoch_resets_follower_progress() {
        let mut set = ReplicaSet::new(2);
        assert_eq!(
            set.apply(&meta(1, 1, &[1, 2, 3]), 0, 0),
            Transition::BecameFollower
        );
        assert!(!set.record_fetch(3, 0, 0, 0));
        assert_eq!(
            set.apply(&meta(2, 2, &[2, 3]), 7, 0),
            Transition::BecameLeader
        );
        assert_eq!(set.apply(&meta(2, 2, &[2, 3]), 7, 0), Transition::Unchanged);
        // A follower below the epoch start cannot join the ISR.
        set.record_fetch(1, 5, 7, 10);
        assert_eq!(set.isr_change(10, 1000, 5, |_| true), None);
        set.record_fetch(3, 7, 7, 10);
        set.record_fetch(1, 7, 7, 10);
        assert_eq!(
            set.isr_change(10, 1000, 7, |id| id != 1),
            None,
            "1 is fenced"
        );
        assert_eq!(set.isr_change(10, 1000, 7, |_| true), Some(vec![2, 3, 1]));
    }
}
