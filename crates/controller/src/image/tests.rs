use std::collections::BTreeMap;

use uuid::Uuid;

use crate::{Applied, Command, ConfigResource, MetadataImage, Rejection};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn register(node_id: i32) -> Command {
    Command::RegisterBroker {
        node_id,
        host: "localhost".into(),
        port: 9092,
        rack: None,
        listeners: Vec::new(),
    }
}

fn create(name: &str, topic_id: Uuid, assignments: Vec<Vec<i32>>) -> Command {
    Command::CreateTopic {
        name: name.into(),
        topic_id,
        assignments,
        configs: BTreeMap::new(),
    }
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Three brokers (0, 1, 2) and topic "t" (id 1) with two partitions on [0, 1] and [1, 2].
fn image() -> MetadataImage {
    let mut image = MetadataImage::new();
    for node in 0..3 {
        image.apply(&register(node)).unwrap();
    }
    image
        .apply(&create("t", id(1), vec![vec![0, 1], vec![1, 2]]))
        .unwrap();
    image
}

/// Applies `command`, expects a rejection with `code`, and checks nothing changed.
fn rejected(image: &mut MetadataImage, command: Command, code: i16) -> Rejection {
    let before = image.clone();
    let rejection = image.apply(&command).unwrap_err();
    assert_eq!(rejection.kafka_error().code(), code, "{rejection}");
    assert_eq!(*image, before, "a rejected command changed the image");
    rejection
}

#[test]
fn create_topic_builds_partitions_led_by_first_replica() {
    let image = image();
    let t = image.topic("t").unwrap();
    assert_eq!(image.topic_by_id(id(1)).unwrap().name, "t");
    assert_eq!(t.partitions.len(), 2);
    let p1 = &t.partitions[1];
    assert_eq!(
        (p1.partition, p1.leader, p1.leader_epoch, p1.partition_epoch),
        (1, 1, 0, 0)
    );
    assert_eq!(p1.isr, vec![1, 2]);
    assert!(!t.internal);
    assert_eq!(image.applied_index(), 4);
    image.check_invariants().unwrap();
}

#[test]
fn existing_topic_name_is_topic_already_exists() {
    let r = rejected(&mut image(), create("t", id(2), vec![vec![0]]), 36);
    assert_eq!(r, Rejection::TopicAlreadyExists("t".into()));
}

#[test]
fn dot_underscore_collision_is_invalid_topic() {
    let mut image = image();
    image.apply(&create("a.b", id(2), vec![vec![0]])).unwrap();
    rejected(&mut image, create("a_b", id(3), vec![vec![0]]), 17);
}

#[test]
fn illegal_topic_name_is_invalid_topic() {
    rejected(&mut image(), create("bad name", id(2), vec![vec![0]]), 17);
    rejected(&mut image(), create("..", id(2), vec![vec![0]]), 17);
}

#[test]
fn internal_flag_only_for_kafkas_internal_topics() {
    let mut image = image();
    image
        .apply(&create("__consumer_offsets", id(2), vec![vec![0]]))
        .unwrap();
    image
        .apply(&create("__other", id(3), vec![vec![0]]))
        .unwrap();
    assert!(image.topic("__consumer_offsets").unwrap().internal);
    assert!(!image.topic("__other").unwrap().internal);
}

#[test]
fn zero_partitions_is_invalid_partitions() {
    rejected(&mut image(), create("u", id(2), vec![]), 37);
}

#[test]
fn bad_replica_lists_are_invalid_replica_assignment() {
    rejected(&mut image(), create("u", id(2), vec![vec![]]), 39);
    rejected(&mut image(), create("u", id(2), vec![vec![0, 0]]), 39);
    rejected(&mut image(), create("u", id(2), vec![vec![7]]), 39);
    rejected(
        &mut image(),
        create("u", id(2), vec![vec![0, 1], vec![2]]),
        39,
    );
}

#[test]
fn invalid_topic_config_is_invalid_config() {
    let mut image = image();
    let mut bad = |pairs: &[(&str, &str)]| {
        let command = Command::CreateTopic {
            name: "u".into(),
            topic_id: id(2),
            assignments: vec![vec![0]],
            configs: configs(pairs),
        };
        rejected(&mut image, command, 40);
    };
    bad(&[("no.such.key", "1")]);
    bad(&[("cleanup.policy", "shred")]);
    bad(&[("retention.ms", "-2")]);
    bad(&[
        ("min.compaction.lag.ms", "10"),
        ("max.compaction.lag.ms", "5"),
    ]);
}

#[test]
fn nil_or_reused_topic_id_is_refused() {
    rejected(&mut image(), create("u", Uuid::nil(), vec![vec![0]]), -1);
    rejected(&mut image(), create("u", id(1), vec![vec![0]]), -1);
}

#[test]
fn delete_unknown_topic_is_unknown_topic() {
    let mut image = image();
    rejected(
        &mut image,
        Command::DeleteTopic {
            name: "nope".into(),
        },
        3,
    );
    image
        .apply(&Command::DeleteTopic { name: "t".into() })
        .unwrap();
    assert!(image.topic("t").is_none() && image.topic_by_id(id(1)).is_none());
    image.check_invariants().unwrap();
}

#[test]
fn create_partitions_appends_partitions() {
    let mut image = image();
    let command = Command::CreatePartitions {
        topic: "t".into(),
        new_assignments: vec![vec![2, 0]],
    };
    image.apply(&command).unwrap();
    let p = &image.topic("t").unwrap().partitions[2];
    assert_eq!((p.partition, p.leader), (2, 2));
}

#[test]
fn create_partitions_must_grow_and_keep_replication_factor() {
    let mut image = image();
    let add = |topic: &str, new_assignments: Vec<Vec<i32>>| Command::CreatePartitions {
        topic: topic.into(),
        new_assignments,
    };
    rejected(&mut image, add("t", vec![]), 37);
    rejected(&mut image, add("t", vec![vec![0]]), 39);
    rejected(&mut image, add("t", vec![vec![0, 9]]), 39);
    rejected(&mut image, add("nope", vec![vec![0, 1]]), 3);
}

#[test]
fn alter_topic_configs_sets_and_deletes() {
    let mut image = image();
    let alter = |changes: &[(&str, Option<&str>)]| Command::AlterConfigs {
        resource: ConfigResource::Topic("t".into()),
        changes: changes
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect(),
    };
    image
        .apply(&alter(&[("retention.ms", Some("1000"))]))
        .unwrap();
    assert_eq!(
        image.topic("t").unwrap().configs,
        configs(&[("retention.ms", "1000")])
    );
    image.apply(&alter(&[("retention.ms", None)])).unwrap();
    assert!(image.topic("t").unwrap().configs.is_empty());
    rejected(&mut image, alter(&[("segment.bytes", Some("13"))]), 40);
    rejected(&mut image, alter(&[("bogus", None)]), 40);
    let unknown = Command::AlterConfigs {
        resource: ConfigResource::Topic("nope".into()),
        changes: BTreeMap::new(),
    };
    rejected(&mut image, unknown, 3);
}

#[test]
fn alter_broker_configs_needs_a_registered_broker() {
    let mut image = image();
    let alter = |broker: i32, value: Option<&str>| Command::AlterConfigs {
        resource: ConfigResource::Broker(broker),
        changes: [("log.retention.ms".to_string(), value.map(str::to_owned))].into(),
    };
    image.apply(&alter(1, Some("5"))).unwrap();
    assert_eq!(
        image.broker_configs(1),
        configs(&[("log.retention.ms", "5")])
    );
    image.apply(&alter(1, None)).unwrap();
    assert!(image.broker_configs(1).is_empty());
    rejected(&mut image, alter(9, Some("5")), 102);
}

#[test]
fn broker_default_configs_are_kept_apart_from_a_brokers_own() {
    let mut image = image();
    let alter = |resource: ConfigResource, value: Option<&str>| Command::AlterConfigs {
        resource,
        changes: [("log.retention.ms".to_string(), value.map(str::to_owned))].into(),
    };
    image
        .apply(&alter(ConfigResource::BrokerDefault, Some("7")))
        .unwrap();
    image
        .apply(&alter(ConfigResource::Broker(1), Some("5")))
        .unwrap();
    assert_eq!(
        image.broker_default_configs(),
        &configs(&[("log.retention.ms", "7")])
    );
    assert_eq!(
        image.broker_config_overrides(1),
        Some(&configs(&[("log.retention.ms", "5")]))
    );
    image
        .apply(&alter(ConfigResource::BrokerDefault, None))
        .unwrap();
    assert!(image.broker_default_configs().is_empty());
    let empty = Command::AlterConfigs {
        resource: ConfigResource::BrokerDefault,
        changes: [(" ".to_string(), Some("1".to_owned()))].into(),
    };
    let before = image.clone();
    assert!(image.apply(&empty).is_err());
    assert_eq!(image, before);
    // An image written before the cluster default existed still reads.
    let mut json = serde_json::to_value(&image).unwrap();
    json.as_object_mut()
        .unwrap()
        .remove("broker_default_configs");
    let read: MetadataImage = serde_json::from_value(json).unwrap();
    assert_eq!(read, image);
}

#[test]
fn producer_id_blocks_follow_each_other() {
    let mut image = image();
    let allocate = |broker_id, count| Command::AllocateProducerIds { broker_id, count };
    assert_eq!(
        image.apply(&allocate(0, 1000)).unwrap(),
        Applied::ProducerIds {
            first: 0,
            count: 1000
        }
    );
    assert_eq!(
        image.apply(&allocate(1, 10)).unwrap(),
        Applied::ProducerIds {
            first: 1000,
            count: 10
        }
    );
    rejected(&mut image, allocate(9, 10), 102);
    rejected(&mut image, allocate(0, 0), 42);
    rejected(&mut image, allocate(0, i64::MAX), -1);
}

#[test]
fn bad_broker_registration_is_invalid_request() {
    let mut image = image();
    let reg = |node_id, host: &str, port, rack: Option<&str>| Command::RegisterBroker {
        node_id,
        host: host.into(),
        port,
        rack: rack.map(Into::into),
        listeners: Vec::new(),
    };
    rejected(&mut image, reg(-1, "h", 1, None), 42);
    rejected(&mut image, reg(5, "", 1, None), 42);
    rejected(&mut image, reg(5, "h", 0, None), 42);
    rejected(&mut image, reg(5, "h", 1, Some("")), 42);
    image.apply(&reg(1, "other", 9093, Some("r1"))).unwrap();
    assert_eq!(image.broker(1).unwrap().host, "other");
}

#[test]
fn image_survives_json_round_trip() {
    let image = image();
    let json = serde_json::to_string(&image).unwrap();
    assert_eq!(serde_json::from_str::<MetadataImage>(&json).unwrap(), image);
}

fn acl(name: &str, principal: &str) -> crate::acl::AclBinding {
    use crate::acl::*;
    AclBinding {
        resource_type: ResourceType::Topic,
        pattern_type: PatternType::Literal,
        resource_name: name.into(),
        principal: principal.into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    }
}

#[test]
fn acls_are_created_all_or_none_and_deleted_idempotently() {
    let mut image = image();
    let good = acl("t", "User:alice");
    image
        .apply(&Command::CreateAcls {
            acls: vec![good.clone(), good.clone()],
        })
        .unwrap();
    assert_eq!(image.acls().len(), 1);
    let refused = rejected(
        &mut image,
        Command::CreateAcls {
            acls: vec![acl("u", "User:bob"), acl("v", "bob")],
        },
        42,
    );
    assert!(matches!(refused, Rejection::InvalidAcl { .. }));
    assert_eq!(image.acls().len(), 1, "a refused command stores nothing");
    // The set survives a snapshot.
    let json = serde_json::to_string(&image).unwrap();
    assert_eq!(serde_json::from_str::<MetadataImage>(&json).unwrap(), image);
    image
        .apply(&Command::DeleteAcls {
            acls: vec![good.clone(), acl("x", "User:nobody")],
        })
        .unwrap();
    assert!(image.acls().is_empty());
}
