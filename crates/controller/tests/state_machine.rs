//! Properties of `MetadataImage::apply` over random command sequences.

mod common;

use controller::{Applied, MetadataImage};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_after_every_command(commands in common::commands(40)) {
        let mut image = MetadataImage::new();
        let mut next_producer_id = 0i64;
        let mut accepted = 0u32;
        for command in &commands {
            let before = image.clone();
            match image.apply(command) {
                Err(rejection) => {
                    prop_assert_eq!(&image, &before, "rejected {:?} ({}) changed the image", command, rejection);
                }
                Ok(applied) => {
                    accepted += 1;
                    prop_assert_eq!(image.applied_index(), before.applied_index() + 1);
                    if let Applied::ProducerIds { first, count } = applied {
                        // Blocks are disjoint and increasing: each starts where the last ended.
                        prop_assert!(count > 0);
                        prop_assert_eq!(first, next_producer_id);
                        next_producer_id = first + count;
                    }
                    prop_assert_eq!(image.next_producer_id(), next_producer_id);
                }
            }
            if let Err(violation) = image.check_invariants() {
                prop_assert!(false, "after {:?}: {}", command, violation);
            }
            // No partition is led by a fenced broker, and a leaderless partition has no
            // live member in its ISR (it would have been elected).
            for topic in image.topics() {
                for p in &topic.partitions {
                    let live = |id: &i32| image.broker(*id).is_some_and(|b| !b.fenced);
                    if p.leader == -1 {
                        prop_assert!(!p.isr.iter().any(live), "after {:?}: {:?} has a live ISR member but no leader", command, p);
                    } else {
                        prop_assert!(live(&p.leader), "after {:?}: {:?} is led by a fenced broker", command, p);
                    }
                }
            }
            let mut ids: Vec<_> = image.topics().map(|t| t.topic_id).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), image.topic_count());
            for topic in image.topics() {
                prop_assert_eq!(&image.topic_by_id(topic.topic_id).unwrap().name, &topic.name);
            }
            let json = serde_json::to_string(&image).unwrap();
            prop_assert_eq!(&serde_json::from_str::<MetadataImage>(&json).unwrap(), &image);
        }
        prop_assert_eq!(image.applied_index(), u64::from(accepted));
    }
}
