//! Dynamic broker configs are cluster metadata: set through one broker, seen by every other.

use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use strata_tests::cluster::Cluster;
use strata_tests::raw::{call, connect};
use strata_tests::run_bounded;

const BROKER: i8 = 4;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

#[test]
fn a_cluster_default_set_through_one_broker_is_seen_by_another() {
    let mut cluster = Cluster::start(2, 0, &[]);
    run_bounded(Duration::from_secs(60), async move {
        cluster.wait_for_brokers(Duration::from_secs(30)).await;
        let mut first = connect(&cluster.node(1).bootstrap());
        let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s(""))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(s("log.retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("123456")))]),
        ]);
        let (_, response) = call(&mut first, &alter, 1);
        assert_eq!(response.responses[0].error_code, 0, "{response:?}");

        let mut second = connect(&cluster.node(2).bootstrap());
        let describe = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(BROKER)
                .with_resource_name(s("2"))
                .with_configuration_keys(Some(vec![s("log.retention.ms")])),
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, response) = call(&mut second, &describe, 4);
            let entry = &response.results[0].configs[0];
            if entry.value.as_deref() == Some("123456") {
                assert_eq!(entry.config_source, DYNAMIC_DEFAULT_BROKER_CONFIG);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node 2 still describes {entry:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
