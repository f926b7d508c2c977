//! Replica placement for new partitions: a pure function of the broker list.
//!
//! This is Kafka's classic `AdminUtils.assignReplicasToBrokers` with a fixed start index
//! instead of a random one, so the result is deterministic and can be logged as part of
//! a command. Leaders go round-robin over the brokers starting at `start_partition`; the
//! follower shift grows by one per full round so that followers spread too. When every
//! broker has a rack, the broker list is interleaved by rack and each partition's replicas
//! land on as many distinct racks as possible.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Rejection;
use crate::image::BrokerMeta;

/// Places `partitions` new partitions, numbered from `start_partition` (negative means 0),
/// with `replication_factor` replicas each, over `brokers` (order and duplicates do not
/// matter). Returns one replica list per partition, leader first.
///
/// Errors: `partitions < 1` is [`Rejection::InvalidPartitions`]; a replication factor below
/// one or above the number of distinct brokers is [`Rejection::InvalidReplicationFactor`].
pub fn assign_replicas(
    brokers: &[BrokerMeta],
    partitions: i32,
    replication_factor: i16,
    start_partition: i32,
) -> Result<Vec<Vec<i32>>, Rejection> {
    if partitions < 1 {
        return Err(Rejection::InvalidPartitions {
            topic: String::new(),
            reason: format!(
                "Number of partitions was set to an invalid non-positive value ({partitions})."
            ),
        });
    }
    let racks: BTreeMap<i32, Option<&str>> = brokers
        .iter()
        .map(|b| (b.node_id, b.rack.as_deref()))
        .collect();
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf < 1 {
        return Err(Rejection::InvalidReplicationFactor {
            replication_factor: replication_factor.into(),
            reason: "Replication factor must be larger than 0.".into(),
        });
    }
    if rf > racks.len() {
        return Err(Rejection::InvalidReplicationFactor {
            replication_factor: replication_factor.into(),
            reason: format!(
                "The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                racks.len()
            ),
        });
    }
    let start = start_partition.max(0);
    let all_racked = racks.values().all(Option::is_some);
    let placed = if all_racked {
        let racked: BTreeMap<i32, &str> =
            racks.iter().map(|(&id, r)| (id, r.unwrap_or(""))).collect();
        rack_aware(&racked, partitions, rf, start)
    } else {
        let ids: Vec<i32> = racks.keys().copied().collect();
        rack_unaware(&ids, partitions, rf, start)
    };
    Ok(placed)
}

/// Index of the `nth` follower of the replica at `first`, skipping `first` itself.
fn follower_index(first: usize, shift: usize, nth: usize, n: usize) -> usize {
    let step = 1 + (shift + nth) % (n - 1);
    (first + step) % n
}

fn rack_unaware(ids: &[i32], partitions: i32, rf: usize, start: i32) -> Vec<Vec<i32>> {
    let n = ids.len();
    (start..start.saturating_add(partitions))
        .map(|p| {
            let p = p as usize;
            // The follower shift grows by one per full round of leaders.
            let shift = p / n;
            let first = p % n;
            let mut replicas = vec![ids[first]];
            replicas.extend((0..rf - 1).map(|j| ids[follower_index(first, shift, j, n)]));
            replicas
        })
        .collect()
}

/// Brokers ordered so that consecutive entries sit on different racks where possible:
/// one broker of each rack in rack order, then the next of each, and so on.
fn rack_alternated(racks: &BTreeMap<i32, &str>) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (&id, &rack) in racks {
        by_rack.entry(rack).or_default().push(id);
    }
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

fn rack_aware(
    racks: &BTreeMap<i32, &str>,
    partitions: i32,
    rf: usize,
    start: i32,
) -> Vec<Vec<i32>> {
    let arranged = rack_alternated(racks);
    let n = arranged.len();
    let rack_count = racks.values().collect::<BTreeSet<_>>().len();
    (start..start.saturating_add(partitions))
        .map(|p| {
            let p = p as usize;
            // The follower shift grows by one per full round of leaders.
            let shift = p / n;
            let first = p % n;
            let leader = arranged[first];
            let mut replicas = vec![leader];
            let mut used_racks = BTreeSet::from([racks[&leader]]);
            let mut k = 0;
            while replicas.len() < rf {
                let broker = arranged[follower_index(first, shift * rack_count, k, n)];
                let rack = racks[&broker];
                let new_rack = !used_racks.contains(rack) || used_racks.len() == rack_count;
                // Once every rack holds a replica, any unused broker will do. A full cycle
                // of `k` visits every other broker, so this terminates.
                if (new_rack || k >= n) && !replicas.contains(&broker) {
                    replicas.push(broker);
                    used_racks.insert(rack);
                }
                k += 1;
            }
            replicas
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: i32, rack: Option<&str>) -> BrokerMeta {
        BrokerMeta {
            node_id: id,
            host: "h".into(),
            port: 9092,
            rack: rack.map(Into::into),
            fenced: false,
            listeners: Vec::new(),
        }
    }

    #[test]
    fn single_broker_gets_every_partition() {
        let b = [broker(1, None)];
        assert_eq!(
            assign_replicas(&b, 3, 1, 0).unwrap(),
            vec![vec![1], vec![1], vec![1]]
        );
    }

    #[test]
    fn leaders_round_robin_and_replicas_distinct() {
        let b: Vec<_> = (0..3).map(|i| broker(i, None)).collect();
        let a = assign_replicas(&b, 6, 3, 0).unwrap();
        let leaders: Vec<i32> = a.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![0, 1, 2, 0, 1, 2]);
        for r in &a {
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3);
        }
    }

    #[test]
    fn start_partition_continues_the_round_robin() {
        let b: Vec<_> = (0..3).map(|i| broker(i, None)).collect();
        let all = assign_replicas(&b, 6, 2, 0).unwrap();
        let tail = assign_replicas(&b, 2, 2, 4).unwrap();
        assert_eq!(tail, all[4..].to_vec());
    }

    #[test]
    fn rack_aware_spreads_replicas_over_racks() {
        let b = [
            broker(0, Some("a")),
            broker(1, Some("a")),
            broker(2, Some("b")),
            broker(3, Some("b")),
            broker(4, Some("c")),
        ];
        for replicas in assign_replicas(&b, 10, 3, 0).unwrap() {
            let racks: BTreeSet<_> = replicas
                .iter()
                .map(|id| b[*id as usize].rack.clone())
                .collect();
            assert_eq!(racks.len(), 3, "{replicas:?}");
        }
        for replicas in assign_replicas(&b, 10, 5, 0).unwrap() {
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 5);
        }
    }

    #[test]
    fn replication_factor_above_broker_count_is_rejected() {
        let b = [broker(0, None), broker(1, None)];
        let err = assign_replicas(&b, 1, 3, 0).unwrap_err();
        assert_eq!(err.kafka_error().code(), 38);
        assert_eq!(
            assign_replicas(&[], 1, 1, 0)
                .unwrap_err()
                .kafka_error()
                .code(),
            38
        );
        assert_eq!(
            assign_replicas(&b, 1, 0, 0)
                .unwrap_err()
                .kafka_error()
                .code(),
            38
        );
    }

    #[test]
    fn non_positive_partition_count_is_rejected() {
        let b = [broker(0, None)];
        assert_eq!(
            assign_replicas(&b, 0, 1, 0)
                .unwrap_err()
                .kafka_error()
                .code(),
            37
        );
    }
}
