//! acks and `min.insync.replicas` on a replicated topic, as Kafka answers them: acks=all is
//! refused with NOT_ENOUGH_REPLICAS while the ISR is below the minimum, acks=1 is not, and
//! the records acks=all did write are readable once the ISR is whole again. Also: records
//! deleted on the leader (DeleteRecords) stay deleted after it fails over.

use std::time::{Duration, Instant};

use client::Cluster as Client;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strata_tests::cluster::Cluster;
use strata_tests::replicas::{produce, wait_for_isr};
use strata_tests::{replicas, run_bounded};

/// NOT_ENOUGH_REPLICAS.
const NOT_ENOUGH_REPLICAS: i16 = 19;

#[test]
fn acks_all_needs_min_insync_replicas_and_acks_1_does_not() {
    let mut cluster = Cluster::start(3, 0, &[("replica.lag.time.max.ms", "1000")]);
    run_bounded(Duration::from_secs(90), async move {
        let mut client = replicas::create_topic(&mut cluster, "strict", 1, Some("3")).await;
        wait_for_isr(&mut client, "strict", 3, Duration::from_secs(10)).await;
        assert_eq!(produce(&mut client, "strict", -1, "whole").await, 0);

        // One follower dies; once it has left the ISR, acks=all is refused and acks=1 is not.
        let topics = client
            .metadata(Some(&["strict"]), false)
            .await
            .expect("metadata");
        let leader = topics[0].partitions[0].leader;
        let follower = (1..=3).find(|&n| n != leader).expect("a follower");
        cluster.node(follower).kill();
        let mut client = Client::connect(&cluster.node(leader).bootstrap())
            .await
            .expect("connect");
        wait_for_isr(&mut client, "strict", 2, Duration::from_secs(10)).await;
        assert_eq!(
            produce(&mut client, "strict", -1, "refused").await,
            NOT_ENOUGH_REPLICAS,
            "acks=all with 2 in-sync replicas of min.insync.replicas=3"
        );
        assert_eq!(produce(&mut client, "strict", 1, "leader only").await, 0);

        // The follower comes back and catches up: acks=all works again.
        cluster.node(follower).restart();
        wait_for_isr(&mut client, "strict", 3, Duration::from_secs(20)).await;
        assert_eq!(produce(&mut client, "strict", -1, "whole again").await, 0);
        let high_watermark = client.list_offset("strict", 0, -1).await.expect("offsets");
        assert_eq!(high_watermark, 3, "whole, leader only, whole again");
    });
}

#[test]
fn records_deleted_on_the_leader_stay_deleted_after_a_failover() {
    let mut cluster = Cluster::start(3, 0, &[]);
    run_bounded(Duration::from_secs(90), async move {
        let mut client = replicas::create_topic(&mut cluster, "trimmed", 1, None).await;
        wait_for_isr(&mut client, "trimmed", 3, Duration::from_secs(10)).await;
        for i in 0..10 {
            assert_eq!(
                produce(&mut client, "trimmed", -1, &format!("r{i}")).await,
                0
            );
        }
        let topics = client
            .metadata(Some(&["trimmed"]), false)
            .await
            .expect("metadata");
        let leader = topics[0].partitions[0].leader;
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("trimmed")))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(6)])]);
        let response = client
            .broker(leader)
            .await
            .expect("leader")
            .send(request, 2)
            .await
            .expect("delete records");
        let result = &response.topics[0].partitions[0];
        assert_eq!((result.error_code, result.low_watermark), (0, 6));
        // Followers learn the new log start from their next fetch (within the fetch wait).
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.node(leader).kill();
        let survivor = (1..=3).find(|&n| n != leader).expect("a survivor");
        let mut client = Client::connect(&cluster.node(survivor).bootstrap())
            .await
            .expect("connect");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let topics = client
                .metadata(Some(&["trimmed"]), false)
                .await
                .expect("metadata");
            let now = topics[0].partitions[0].leader;
            if now > 0 && now != leader {
                break;
            }
            assert!(Instant::now() < deadline, "no new leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let earliest = client
            .list_offset("trimmed", 0, -2)
            .await
            .expect("earliest");
        assert_eq!(earliest, 6, "the new leader keeps the deletion");
    });
}
