//! The properties every image reachable by [`MetadataImage::apply`] has. Checked when a
//! snapshot is loaded and after every step of the property tests.

use std::collections::BTreeSet;

use super::MetadataImage;
use crate::topic_config::validate_topic_configs;
use crate::validate::is_internal_topic;

impl MetadataImage {
    /// Checks the image's internal consistency: brokers keyed by their id; the topic-id
    /// map is exactly the inverse of the topics' ids, ids non-nil and unique; partitions
    /// numbered `0..n` with non-empty, duplicate-free, registered, equally long replica
    /// lists, a non-empty ISR within replicas and a leader in the ISR (or -1); configs valid; internal flag right;
    /// next producer id non-negative. `Err` names the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (id, broker) in &self.brokers {
            if *id != broker.node_id {
                return Err(format!("broker keyed {id} has node id {}", broker.node_id));
            }
        }
        if self.topic_ids.len() != self.topics.len() {
            return Err(format!(
                "{} topic ids for {} topics",
                self.topic_ids.len(),
                self.topics.len()
            ));
        }
        for (id, name) in &self.topic_ids {
            match self.topics.get(name) {
                Some(t) if t.topic_id == *id => {}
                _ => {
                    return Err(format!(
                        "topic id {id} maps to '{name}', which does not have it"
                    ))
                }
            }
            if id.is_nil() {
                return Err(format!("topic '{name}' has the nil id"));
            }
        }
        for (name, topic) in &self.topics {
            self.check_topic(name, topic)?;
        }
        if let Some(id) = self
            .broker_configs
            .keys()
            .find(|id| !self.brokers.contains_key(id))
        {
            return Err(format!("configs for unregistered broker {id}"));
        }
        if self.next_producer_id < 0 {
            return Err(format!(
                "negative next producer id {}",
                self.next_producer_id
            ));
        }
        Ok(())
    }

    fn check_topic(&self, name: &str, topic: &super::TopicMeta) -> Result<(), String> {
        if topic.name != name {
            return Err(format!("topic keyed '{name}' is named '{}'", topic.name));
        }
        if topic.internal != is_internal_topic(name) {
            return Err(format!("topic '{name}' has a wrong internal flag"));
        }
        if topic.partitions.is_empty() {
            return Err(format!("topic '{name}' has no partitions"));
        }
        validate_topic_configs(&topic.configs).map_err(|e| format!("topic '{name}': {e}"))?;
        let width = topic.replication_factor();
        for (index, p) in topic.partitions.iter().enumerate() {
            let at = format!("{name}-{index}");
            if p.partition as usize != index {
                return Err(format!("{at} is numbered {}", p.partition));
            }
            let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
            if p.replicas.is_empty()
                || replicas.len() != p.replicas.len()
                || p.replicas.len() != width
            {
                return Err(format!("{at} has bad replicas {:?}", p.replicas));
            }
            if let Some(id) = p.replicas.iter().find(|id| !self.brokers.contains_key(id)) {
                return Err(format!("{at} names unregistered broker {id}"));
            }
            if p.isr.is_empty()
                || !p.isr.iter().all(|id| replicas.contains(id))
                || (p.leader != -1 && !p.isr.contains(&p.leader))
            {
                return Err(format!("{at} has ISR {:?} and leader {}", p.isr, p.leader));
            }
        }
        Ok(())
    }
}
