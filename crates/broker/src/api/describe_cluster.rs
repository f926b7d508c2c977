//! DescribeCluster (key 60): cluster id, controller and brokers.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use controller::acl::ResourceType;

use super::{str_bytes, Ctx};

pub(super) fn handle(ctx: &Ctx<'_>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let image = ctx.broker.image();
    let brokers = image
        .live_brokers()
        .filter_map(|b| {
            let (host, port) = b.endpoint(ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.node_id))
                    .with_host(str_bytes(host.to_owned()))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(ctx.broker.cluster_id.clone()))
        .with_controller_id(BrokerId(ctx.broker.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(ctx.authz().operations_if(
            request.include_cluster_authorized_operations,
            ResourceType::Cluster,
            controller::acl::CLUSTER_NAME,
        ))
}
