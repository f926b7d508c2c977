//! A single `strata serve` node driven by real Kafka clients: librdkafka through the rdkafka
//! crate, Strata's own client, and raw sockets for input no client would send.

mod acls;
mod admin;
mod admin_apis;
mod bad_input;
mod cli;
mod common;
mod compaction;
mod compaction_txn;
mod config;
mod connection_limits;
mod consumer_groups;
mod disk_space;
mod durability;
mod dynamic_config;
mod groups;
mod idempotence;
mod metrics;
mod migration;
mod offsets;
mod partition_budget;
mod produce_consume;
mod quotas;
mod reauth;
mod record_validation;
mod security;
mod tls_operations;
mod transactions;
mod transactions_v2;
mod txn_tool;
