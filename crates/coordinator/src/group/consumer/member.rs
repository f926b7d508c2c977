//! A member of a consumer-protocol group and the reconciliation of its current assignment
//! towards its target (Kafka's `CurrentAssignmentBuilder`).
//!
//! The invariant this guards: a partition is owned by at most one member at a time. A member
//! loses a partition first (it stays "pending revocation" until the member's heartbeat no
//! longer lists it), and only then may another member be given it; until then that member
//! waits with the partition "unreleased".

use std::collections::BTreeSet;

use bytes::Bytes;
use uuid::Uuid;

use super::Assignment;

/// Where a member is in reconciling its assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// The member owns its target assignment at the target epoch.
    Stable,
    /// The member must give up partitions before it may move to the next epoch.
    UnrevokedPartitions,
    /// The member is at the target epoch but waits for partitions others still own.
    UnreleasedPartitions,
}

/// One member of a consumer group.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: u64,
    /// Sorted, without duplicates.
    pub subscribed_topic_names: Vec<String>,
    /// A regular expression topic names must match as a whole (Kafka's RE2/J syntax is
    /// close to the `regex` crate's).
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub state: MemberState,
    pub epoch: i32,
    pub previous_epoch: i32,
    /// Partitions the member owns (or is being given) and keeps.
    pub assigned: Assignment,
    /// Partitions the member still owns but must give up.
    pub pending_revocation: Assignment,
    /// When the session lapses without a heartbeat.
    pub session_deadline_ms: u64,
    /// When a member that must revoke partitions is fenced for not doing so.
    pub revocation_deadline_ms: Option<u64>,
    /// For a member of the classic protocol: its JoinGroup's session timeout and protocols.
    pub classic: Option<ClassicMember>,
    /// When a classic member told to rejoin (or that joined) is removed for not rejoining
    /// (or syncing): Kafka's join and sync timeouts, the member's rebalance timeout.
    pub classic_deadline_ms: Option<u64>,
}

/// What a member using the classic protocol inside a consumer group keeps of its JoinGroup
/// (Kafka's `ClassicMemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMember {
    pub session_timeout_ms: u64,
    /// (name, ConsumerProtocolSubscription) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
}

impl Member {
    /// A member that has just joined: epoch 0, nothing assigned.
    pub fn new(id: String) -> Self {
        Self {
            id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 300_000,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            state: MemberState::Stable,
            epoch: 0,
            previous_epoch: -1,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
            classic: None,
            classic_deadline_ms: None,
        }
    }

    /// Every partition the member may still hold: assigned and pending revocation.
    pub fn owned(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        self.assigned
            .iter()
            .chain(self.pending_revocation.iter())
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
    }

    fn set_epoch(&mut self, epoch: i32) {
        if epoch != self.epoch {
            self.previous_epoch = self.epoch;
            self.epoch = epoch;
        }
    }
}

/// Whether `owned` (from a heartbeat; `None` when the member did not say) may still hold any
/// partition of `revoking`. Not saying counts as still owning.
pub fn owns_any(owned: Option<&[(Uuid, Vec<i32>)]>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    owned.iter().any(|(topic, partitions)| {
        revoking
            .get(topic)
            .is_some_and(|r| partitions.iter().any(|p| r.contains(p)))
    })
}

/// Moves `member` one step towards `target` at `target_epoch`, given what its heartbeat says
/// it owns and `held`, which answers whether a member (this one included) holds a partition.
pub fn reconcile(
    member: &mut Member,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&[(Uuid, Vec<i32>)]>,
    held: impl Fn(Uuid, i32) -> bool,
) {
    match member.state {
        MemberState::Stable if member.epoch == target_epoch => {}
        MemberState::Stable | MemberState::UnreleasedPartitions => {
            let epoch = member.epoch;
            next_assignment(member, epoch, target_epoch, target, owned, held);
        }
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                return;
            }
            let epoch = member.epoch + 1;
            next_assignment(member, epoch, target_epoch, target, owned, held);
        }
    }
}

fn next_assignment(
    member: &mut Member,
    member_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    owned: Option<&[(Uuid, Vec<i32>)]>,
    held: impl Fn(Uuid, i32) -> bool,
) {
    let mut assigned = Assignment::new();
    let mut revoking = Assignment::new();
    let mut adding = Assignment::new();
    let mut unreleased = false;
    let topics: BTreeSet<Uuid> = target
        .keys()
        .chain(member.assigned.keys())
        .copied()
        .collect();
    let empty = BTreeSet::new();
    for topic in topics {
        let want = target.get(&topic).unwrap_or(&empty);
        let have = member.assigned.get(&topic).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let lose: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let pending_here = member.pending_revocation.get(&topic);
        let mut gain = BTreeSet::new();
        for &p in want.difference(&keep) {
            // A partition still held by another member is not given yet. One this member
            // itself is revoking is safe to give back: only one member holds it.
            let held_elsewhere = held(topic, p) && !pending_here.is_some_and(|r| r.contains(&p));
            if held_elsewhere {
                unreleased = true;
            } else {
                gain.insert(p);
            }
        }
        if !keep.is_empty() {
            assigned.insert(topic, keep);
        }
        if !lose.is_empty() {
            revoking.insert(topic, lose);
        }
        if !gain.is_empty() {
            adding.insert(topic, gain);
        }
    }
    if !revoking.is_empty() && owns_any(owned, &revoking) {
        member.state = MemberState::UnrevokedPartitions;
        member.set_epoch(member_epoch);
        member.assigned = assigned;
        member.pending_revocation = revoking;
        return;
    }
    for (topic, partitions) in adding {
        assigned.entry(topic).or_default().extend(partitions);
    }
    member.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    member.set_epoch(target_epoch);
    member.assigned = assigned;
    member.pending_revocation = Assignment::new();
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Uuid = Uuid::from_u128(7);

    fn parts(ps: &[i32]) -> Assignment {
        if ps.is_empty() {
            return Assignment::new();
        }
        Assignment::from([(T, ps.iter().copied().collect())])
    }

    fn owned(ps: &[i32]) -> Vec<(Uuid, Vec<i32>)> {
        vec![(T, ps.to_vec())]
    }

    #[test]
    fn a_new_member_gets_free_partitions_at_once() {
        let mut m = Member::new("m".into());
        reconcile(&mut m, 3, &parts(&[0, 1]), Some(&owned(&[])), |_, _| false);
        assert_eq!((m.state, m.epoch), (MemberState::Stable, 3));
        assert_eq!(m.assigned, parts(&[0, 1]));
    }

    #[test]
    fn partitions_held_by_another_member_wait_until_released() {
        let mut m = Member::new("m".into());
        let held = |_, p| p == 1;
        reconcile(&mut m, 3, &parts(&[0, 1]), Some(&owned(&[])), held);
        assert_eq!(m.state, MemberState::UnreleasedPartitions);
        assert_eq!((m.epoch, m.assigned.clone()), (3, parts(&[0])));
        reconcile(&mut m, 3, &parts(&[0, 1]), Some(&owned(&[0])), held);
        assert_eq!(m.assigned, parts(&[0]), "still held");
        reconcile(&mut m, 3, &parts(&[0, 1]), Some(&owned(&[0])), |_, _| false);
        assert_eq!(
            (m.state, m.assigned.clone()),
            (MemberState::Stable, parts(&[0, 1]))
        );
    }

    #[test]
    fn revocation_keeps_the_epoch_until_the_member_lets_go() {
        let mut m = Member::new("m".into());
        reconcile(&mut m, 1, &parts(&[0, 1, 2]), Some(&owned(&[])), |_, _| {
            false
        });
        reconcile(&mut m, 2, &parts(&[0]), Some(&owned(&[0, 1, 2])), |_, _| {
            false
        });
        assert_eq!(m.state, MemberState::UnrevokedPartitions);
        assert_eq!(m.epoch, 1, "no new epoch before the revocation");
        assert_eq!(m.assigned, parts(&[0]));
        assert_eq!(m.pending_revocation, parts(&[1, 2]));
        reconcile(&mut m, 2, &parts(&[0]), Some(&owned(&[0, 2])), |_, _| false);
        assert_eq!(
            m.state,
            MemberState::UnrevokedPartitions,
            "2 not yet revoked"
        );
        reconcile(&mut m, 2, &parts(&[0]), None, |_, _| false);
        assert_eq!(
            m.state,
            MemberState::UnrevokedPartitions,
            "silence is not revocation"
        );
        reconcile(&mut m, 2, &parts(&[0]), Some(&owned(&[0])), |_, _| false);
        assert_eq!((m.state, m.epoch), (MemberState::Stable, 2));
        assert!(m.pending_revocation.is_empty());
        assert_eq!(m.previous_epoch, 1);
    }
}
