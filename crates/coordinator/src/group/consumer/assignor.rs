//! Server-side assignors of the consumer protocol (KIP-848): `uniform` (the default) and
//! `range`. Both are pure functions from members' subscriptions, the subscribed topics'
//! partition counts and the previous target assignment to the next target assignment.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

/// The assignors this broker serves, the default first (`group.consumer.assignors`).
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A subscribed topic as the assignor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
}

/// One member's input to an assignor.
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    pub id: &'a str,
    /// Subscribed topics that exist, by name.
    pub topics: BTreeSet<&'a str>,
    /// The member's previous target assignment (for stickiness).
    pub previous: Option<&'a Assignment>,
}

/// Runs the assignor `name` (one of [`ASSIGNORS`]; anything else is treated as the default).
/// Every partition of a topic someone subscribes to goes to exactly one member subscribed to
/// it; every member gets an entry, possibly empty.
pub fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<String, TopicInfo>,
) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

/// Per topic, the members subscribed to it in member id order take contiguous ranges of
/// partitions, the first ones one partition more when the count does not divide evenly.
fn range(
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<String, TopicInfo>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_owned(), Assignment::new()))
        .collect();
    for (name, info) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(name.as_str()))
            .map(|m| m.id)
            .collect();
        if subscribers.is_empty() || info.partitions <= 0 {
            continue;
        }
        subscribers.sort_unstable();
        let n = subscribers.len() as i32;
        let (quota, extra) = (info.partitions / n, info.partitions % n);
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let count = quota + i32::from((i as i32) < extra);
            if count == 0 {
                continue;
            }
            let partitions = out.get_mut(*member).map(|a| a.entry(info.id).or_default());
            if let Some(partitions) = partitions {
                partitions.extend(next..next + count);
            }
            next += count;
        }
    }
    out
}

/// Spreads partitions evenly over members, keeping each partition where it was when balance
/// allows (so that a rebalance moves as few partitions as possible).
fn uniform(
    members: &[AssignorMember<'_>],
    topics: &BTreeMap<String, TopicInfo>,
) -> BTreeMap<String, Assignment> {
    let by_id: BTreeMap<Uuid, &str> = topics
        .iter()
        .map(|(name, info)| (info.id, name.as_str()))
        .collect();
    let mut sorted: Vec<&AssignorMember<'_>> = members.iter().collect();
    sorted.sort_unstable_by_key(|m| m.id);
    // Every partition to assign, with the members that may take it.
    let mut candidates: BTreeMap<(Uuid, i32), Vec<usize>> = BTreeMap::new();
    for (name, info) in topics {
        let subscribers: Vec<usize> = sorted
            .iter()
            .enumerate()
            .filter(|(_, m)| m.topics.contains(name.as_str()))
            .map(|(i, _)| i)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..info.partitions.max(0) {
            candidates.insert((info.id, p), subscribers.clone());
        }
    }
    let homogeneous = sorted.windows(2).all(|w| w[0].topics == w[1].topics);
    let total = candidates.len();
    let n = sorted.len().max(1);
    // In a homogeneous group every member can reach the exact quota; otherwise the ceiling
    // bounds what stickiness may keep, and the balancing pass below evens the rest out.
    let (min_quota, mut extra) = if homogeneous {
        (total / n, total % n)
    } else {
        (total.div_ceil(n), 0)
    };
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; sorted.len()];
    // Stickiness: members keep previous partitions up to their quota.
    for (i, m) in sorted.iter().enumerate() {
        let Some(previous) = m.previous else { continue };
        for (topic, partitions) in previous {
            let Some(name) = by_id.get(topic) else {
                continue;
            };
            if !m.topics.contains(name) {
                continue;
            }
            for &p in partitions {
                if !candidates.contains_key(&(*topic, p)) || owner.contains_key(&(*topic, p)) {
                    continue;
                }
                if load[i] < min_quota || (load[i] == min_quota && extra > 0 && homogeneous) {
                    if load[i] == min_quota {
                        extra -= 1;
                    }
                    owner.insert((*topic, p), i);
                    load[i] += 1;
                }
            }
        }
    }
    // The rest go to the least loaded candidate, partitions with fewer candidates first.
    let mut rest: Vec<(&(Uuid, i32), &Vec<usize>)> = candidates
        .iter()
        .filter(|(tp, _)| !owner.contains_key(tp))
        .collect();
    rest.sort_by_key(|(tp, c)| (c.len(), **tp));
    for (tp, c) in rest {
        if let Some(&best) = c.iter().min_by_key(|&&i| (load[i], i)) {
            owner.insert(*tp, best);
            load[best] += 1;
        }
    }
    // Balance: move a partition from a member with two more than another candidate of it.
    for _ in 0..total {
        let moved = candidates.iter().find_map(|(tp, c)| {
            let from = *owner.get(tp)?;
            let to = *c.iter().min_by_key(|&&i| (load[i], i))?;
            (load[from] > load[to] + 1).then_some((*tp, from, to))
        });
        let Some((tp, from, to)) = moved else { break };
        owner.insert(tp, to);
        load[from] -= 1;
        load[to] += 1;
    }
    let mut out: BTreeMap<String, Assignment> = sorted
        .iter()
        .map(|m| (m.id.to_owned(), Assignment::new()))
        .collect();
    for ((topic, p), i) in owner {
        if let Some(a) = out.get_mut(sorted[i].id) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, u128, i32)]) -> BTreeMap<String, TopicInfo> {
        list.iter()
            .map(|(n, id, p)| {
                (
                    (*n).to_owned(),
                    TopicInfo {
                        id: Uuid::from_u128(*id),
                        partitions: *p,
                    },
                )
            })
            .collect()
    }

    fn member<'a>(id: &'a str, subscribed: &[&'a str]) -> AssignorMember<'a> {
        AssignorMember {
            id,
            topics: subscribed.iter().copied().collect(),
            previous: None,
        }
    }

    fn counts(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        out.values()
            .map(|a| a.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn every_partition_once(out: &BTreeMap<String, Assignment>, total: usize) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t}-{p} assigned twice");
                }
            }
        }
        assert_eq!(seen.len(), total);
    }

    #[test]
    fn uniform_spreads_six_partitions_over_three_members_two_each() {
        let t = topics(&[("t", 1, 6)]);
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let out = assign("uniform", &members, &t);
        every_partition_once(&out, 6);
        assert_eq!(counts(&out), vec![2, 2, 2]);
    }

    #[test]
    fn uniform_keeps_partitions_in_place_when_a_member_leaves() {
        let t = topics(&[("t", 1, 6)]);
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let first = assign("uniform", &members, &t);
        let rest = [
            AssignorMember {
                previous: first.get("a"),
                ..member("a", &["t"])
            },
            AssignorMember {
                previous: first.get("b"),
                ..member("b", &["t"])
            },
        ];
        let second = assign("uniform", &rest, &t);
        every_partition_once(&second, 6);
        assert_eq!(counts(&second), vec![3, 3]);
        for id in ["a", "b"] {
            let before = &first[id][&Uuid::from_u128(1)];
            let after = &second[id][&Uuid::from_u128(1)];
            assert!(
                before.is_subset(after),
                "{id} lost a partition it could keep"
            );
        }
    }

    #[test]
    fn uniform_balances_heterogeneous_subscriptions() {
        let t = topics(&[("x", 1, 4), ("y", 2, 4)]);
        let members = [
            member("a", &["x"]),
            member("b", &["x", "y"]),
            member("c", &["y"]),
        ];
        let out = assign("uniform", &members, &t);
        every_partition_once(&out, 8);
        let c = counts(&out);
        assert!(
            c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
            "{c:?}"
        );
    }

    #[test]
    fn range_gives_contiguous_ranges_first_members_one_more() {
        let t = topics(&[("t", 1, 7)]);
        let members = [
            member("b", &["t"]),
            member("a", &["t"]),
            member("c", &["t"]),
        ];
        let out = assign("range", &members, &t);
        every_partition_once(&out, 7);
        let tid = Uuid::from_u128(1);
        assert_eq!(out["a"][&tid], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&tid], BTreeSet::from([3, 4]));
        assert_eq!(out["c"][&tid], BTreeSet::from([5, 6]));
    }

    #[test]
    fn members_subscribed_to_nothing_get_an_empty_assignment() {
        let t = topics(&[("t", 1, 2)]);
        let members = [member("a", &["t"]), member("b", &[])];
        for name in ASSIGNORS {
            let out = assign(name, &members, &t);
            assert!(out["b"].is_empty());
            every_partition_once(&out, 2);
        }
    }
}
