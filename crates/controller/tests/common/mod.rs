//! Command generators shared by the property tests. The small universes (a handful of
//! broker ids, names and ids, some of them invalid) make collisions, duplicates and
//! refusals frequent.
#![allow(dead_code)]

use std::collections::BTreeMap;

use controller::{Command, ConfigResource, Uuid};
use proptest::prelude::*;
use proptest::sample::select;

fn topic_name() -> impl Strategy<Value = String> {
    select(vec![
        "a",
        "b",
        "a.b",
        "a_b",
        "__consumer_offsets",
        "__x",
        "bad name",
        "",
    ])
    .prop_map(str::to_owned)
}

fn any_replicas() -> impl Strategy<Value = Vec<i32>> {
    select(vec![
        vec![0],
        vec![1],
        vec![0, 1],
        vec![2, 0],
        vec![0, 0],
        vec![],
        vec![7],
    ])
}

/// Replica lists: mostly of one width over registered brokers, sometimes anything.
fn assignments(max: usize) -> impl Strategy<Value = Vec<Vec<i32>>> {
    let uniform = (1..=2usize).prop_flat_map(move |width| {
        let lists: Vec<Vec<i32>> = (0..3)
            .map(|first| (0..width as i32).map(|k| (first + k) % 3).collect())
            .collect();
        prop::collection::vec(select(lists), 0..max)
    });
    prop_oneof![3 => uniform, 1 => prop::collection::vec(any_replicas(), 0..max)]
}

fn config_pair() -> impl Strategy<Value = (String, String)> {
    select(vec![
        ("retention.ms", "1000"),
        ("retention.ms", "-5"),
        ("cleanup.policy", "compact"),
        ("cleanup.policy", "shred"),
        ("bogus", "1"),
        ("min.compaction.lag.ms", "10"),
        ("max.compaction.lag.ms", "5"),
    ])
    .prop_map(|(k, v)| (k.to_owned(), v.to_owned()))
}

/// One random command, valid or not.
pub(crate) fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (-1..4i32, select(vec!["h", ""]), select(vec![9092u16, 0]),
              select(vec![None, Some("r1"), Some("r2"), Some("")]))
            .prop_map(|(node_id, host, port, rack)| Command::RegisterBroker {
                node_id,
                host: host.into(),
                port,
                rack: rack.map(Into::into),
                listeners: Vec::new(),
            }),
        6 => (topic_name(), 0..6u128, assignments(4),
              prop::collection::btree_map(config_pair().prop_map(|p| p.0), config_pair().prop_map(|p| p.1), 0..2))
            .prop_map(|(name, id, assignments, configs)| Command::CreateTopic {
                name,
                topic_id: Uuid::from_u128(id),
                assignments,
                configs,
            }),
        2 => topic_name().prop_map(|name| Command::DeleteTopic { name }),
        5 => (topic_name(), assignments(3))
            .prop_map(|(topic, new_assignments)| Command::CreatePartitions { topic, new_assignments }),
        2 => (prop_oneof![topic_name().prop_map(ConfigResource::Topic), (-1..4i32).prop_map(ConfigResource::Broker)],
              prop::collection::btree_map(config_pair().prop_map(|p| p.0),
                                          prop::option::of(config_pair().prop_map(|p| p.1)), 0..3))
            .prop_map(|(resource, changes): (ConfigResource, BTreeMap<String, Option<String>>)| {
                Command::AlterConfigs { resource, changes }
            }),
        2 => (-1..4i32, select(vec![-1i64, 0, 1, 1000, i64::MAX / 2]))
            .prop_map(|(broker_id, count)| Command::AllocateProducerIds { broker_id, count }),
        2 => (-1..4i32).prop_map(|node_id| Command::FenceBroker { node_id }),
        2 => (-1..4i32).prop_map(|node_id| Command::UnfenceBroker { node_id }),
    ]
}

/// Registrations of brokers 0, 1 and 2, so that placements can succeed.
pub(crate) fn three_brokers() -> Vec<Command> {
    (0..3)
        .map(|node_id| Command::RegisterBroker {
            node_id,
            host: "localhost".into(),
            port: 9092,
            rack: None,
            listeners: Vec::new(),
        })
        .collect()
}

/// A random command sequence that starts by registering three brokers.
pub(crate) fn commands(max: usize) -> impl Strategy<Value = Vec<Command>> {
    prop::collection::vec(command(), 0..max).prop_map(|tail| {
        let mut all = three_brokers();
        all.extend(tail);
        all
    })
}
