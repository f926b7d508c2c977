//! ACLs in a cluster with Kafka's StandardAuthorizer on: followers fetch over the PLAINTEXT
//! inter-broker listener as `User:ANONYMOUS`, a super user as Kafka requires of the
//! inter-broker principal, so a replicated topic keeps its whole ISR and acks=all works; an
//! ACL created through one node reaches the others through the metadata quorum.

use std::time::{Duration, Instant};

use client::Cluster as Client;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{CreateAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use strata_tests::cluster::Cluster;
use strata_tests::{replicas, run_bounded};

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Produces one record with acks=all to partition 0 of `topic` on its leader; the error code.
async fn produce_all(client: &mut Client, topic: &str) -> i16 {
    replicas::produce(client, topic, -1, "v").await
}

#[test]
fn replication_and_acls_work_across_the_cluster_with_the_authorizer_on() {
    let mut cluster = Cluster::start(
        3,
        0,
        &[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:ANONYMOUS"),
            ("replica.lag.time.max.ms", "2000"),
        ],
    );
    run_bounded(Duration::from_secs(90), async move {
        let mut client = replicas::create_topic(&mut cluster, "guarded", 1, Some("3")).await;
        // acks=all with min.insync.replicas=3 needs both followers fetching (CLUSTER_ACTION),
        // well past the time a refused follower would take to leave the ISR.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = -1;
        while Instant::now() < deadline && last != 0 {
            last = produce_all(&mut client, "guarded").await;
            if last != 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        assert_eq!(last, 0, "acks=all with three in-sync replicas");
        tokio::time::sleep(Duration::from_secs(4)).await;
        for _ in 0..5 {
            assert_eq!(produce_all(&mut client, "guarded").await, 0);
        }

        // An ACL created through node 1 is seen by node 3, through the metadata quorum.
        let creation = AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(text("guarded"))
            .with_resource_pattern_type(3)
            .with_principal(text("User:alice"))
            .with_host(text("*"))
            .with_operation(3)
            .with_permission_type(3);
        let mut first = Client::connect(&cluster.node(1).bootstrap())
            .await
            .expect("connect");
        let created = first
            .any()
            .send(
                CreateAclsRequest::default().with_creations(vec![creation]),
                3,
            )
            .await
            .expect("create acls");
        assert_eq!(created.results[0].error_code, 0);
        let mut third = Client::connect(&cluster.node(3).bootstrap())
            .await
            .expect("connect");
        let describe = DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let described = third
                .any()
                .send(describe.clone(), 3)
                .await
                .expect("describe acls");
            assert_eq!(described.error_code, 0);
            if described.resources.len() == 1 {
                assert_eq!(described.resources[0].resource_name.as_str(), "guarded");
                assert_eq!(
                    described.resources[0].acls[0].principal.as_str(),
                    "User:alice"
                );
                break;
            }
            assert!(Instant::now() < deadline, "node 3 never saw the ACL");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
