//! Keeping the local partitions in step with the metadata image: logs opened for new
//! replicas and deleted for removed ones, settings and leadership applied, replica fetchers
//! pointed at the leaders.

use std::collections::HashMap;
use std::sync::Arc;

use controller::{MetadataImage, TopicMeta};
use segment_store::TopicPartition;

use super::{now_ms, Broker, BrokerError, DynamicConfigs, LocalTopic};
use crate::partition::Partition;

impl Broker {
    /// Opens logs for new replicas, drops deleted topics, applies config changes and
    /// leadership; then (outside the reconcile lock) replays the coordinator partitions
    /// that became led here. Blocking: run it off the async workers.
    pub(crate) fn reconcile(&self) -> Result<(), BrokerError> {
        let mut loads = Vec::new();
        let applied = {
            let _guard = self.reconcile_lock.lock();
            self.apply_image(&mut loads)
        };
        // Even when applying failed partway: a partition marked loading must get its load.
        self.run_loads(loads);
        applied
    }

    /// [`Self::reconcile`] under the reconcile lock; coordinator partitions to replay go to
    /// `loads`.
    fn apply_image(
        &self,
        loads: &mut Vec<super::coordination::CoordinatorLoad>,
    ) -> Result<(), BrokerError> {
        let image = self.image();
        self.txns.set_transaction_version(
            image
                .finalized_features()
                .get("transaction.version")
                .copied()
                .unwrap_or(0),
        );
        // Only topics whose metadata changed are rebuilt: unchanged ones share their
        // `Arc<TopicMeta>` with the image the local topic was built from.
        // Topics that are gone, or were deleted and recreated under a new id: their logs
        // go first, so that a recreated topic starts from empty logs.
        let dropped: Vec<(String, Arc<LocalTopic>)> = self
            .topics
            .read()
            .iter()
            .filter(|(name, topic)| {
                image
                    .topic(name)
                    .is_none_or(|m| m.topic_id != topic.topic_id)
            })
            .map(|(name, topic)| (name.clone(), Arc::clone(topic)))
            .collect();
        for (name, topic) in &dropped {
            for p in topic.hosted() {
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: p.index,
                };
                self.log_dir.delete(&tp)?;
            }
            // Before rebuilding, so a recreated topic's partitions count from zero.
            self.topic_stats.remove(name);
        }
        // Dynamic broker configs changed: every topic's settings may have changed.
        let dynamic = DynamicConfigs {
            cluster_default: image.broker_default_configs().clone(),
            per_broker: image.broker_configs(self.config.node_id),
        };
        let rebuild_all = {
            let mut applied = self.applied_dynamic.lock();
            let changed = *applied != dynamic;
            if changed {
                let limits = crate::config::dynamic::connection_limits(
                    &self.config,
                    &dynamic.cluster_default,
                    &dynamic.per_broker,
                );
                self.connection_limits.send_if_modified(|current| {
                    let modified = *current != limits;
                    *current = limits;
                    modified
                });
            }
            *applied = dynamic;
            changed
        };
        let mut rebuilt: Vec<Arc<LocalTopic>> = Vec::new();
        let mut moved_away: Vec<TopicPartition> = Vec::new();
        {
            let current = self.topics.read();
            for meta in image.shared_topics() {
                let existing = current
                    .get(&meta.name)
                    .filter(|t| t.topic_id == meta.topic_id);
                if !rebuild_all && existing.is_some_and(|t| Arc::ptr_eq(&t.meta, meta)) {
                    continue;
                }
                let topic = self.local_topic(&image, meta, existing.map(Arc::as_ref))?;
                // Replicas moved off this node by a reassignment.
                if let Some(existing) = existing {
                    moved_away.extend(
                        existing
                            .hosted()
                            .filter(|p| {
                                topic
                                    .replicas
                                    .get(p.index as usize)
                                    .is_none_or(Option::is_none)
                            })
                            .map(|p| TopicPartition {
                                topic: meta.name.clone(),
                                partition: p.index,
                            }),
                    );
                }
                rebuilt.push(Arc::new(topic));
            }
        }
        {
            let mut topics = self.topics.write();
            for (name, _) in &dropped {
                topics.remove(name);
            }
            for topic in rebuilt {
                topics.insert(topic.meta.name.clone(), topic);
            }
        }
        // Cheap: marks gained partitions loading and unloads lost ones; replay comes later.
        loads.extend(self.update_coordinators());
        for tp in &moved_away {
            tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting a replica moved to other brokers");
            self.log_dir.delete(tp)?;
        }
        self.delete_orphaned_logs()?;
        self.follow_leaders(&image);
        Ok(())
    }

    /// Points the replica fetchers at the leaders of the partitions this node follows.
    fn follow_leaders(&self, image: &MetadataImage) {
        let mut wanted: HashMap<i32, (String, Vec<Arc<Partition>>)> = HashMap::new();
        for topic in self.topics.read().values() {
            for p in topic.hosted() {
                let (leader, _) = p.leader();
                if leader < 0 || leader == self.config.node_id {
                    continue;
                }
                let Some(broker) = image.broker(leader) else {
                    continue;
                };
                wanted
                    .entry(leader)
                    .or_insert_with(|| (format!("{}:{}", broker.host, broker.port), Vec::new()))
                    .1
                    .push(Arc::clone(p));
            }
        }
        for (_, partitions) in wanted.values_mut() {
            partitions.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
        }
        self.fetchers.update(wanted);
    }

    /// Topic `meta` as this node serves it: partitions with a replica here are opened
    /// (their logs created when new), reusing `existing`'s partitions.
    fn local_topic(
        &self,
        image: &MetadataImage,
        meta: &Arc<TopicMeta>,
        existing: Option<&LocalTopic>,
    ) -> Result<LocalTopic, BrokerError> {
        let node = self.config.node_id;
        let settings = self.topic_settings(image, meta);
        let mut replicas = Vec::with_capacity(meta.partitions.len());
        let mut leading = Vec::with_capacity(meta.partitions.len());
        for p in &meta.partitions {
            leading.push(p.leader == node);
            if !p.replicas.contains(&node) {
                replicas.push(None);
                continue;
            }
            let found =
                existing.and_then(|t| t.replicas.get(p.partition as usize).cloned().flatten());
            let partition = match found {
                Some(partition) => {
                    partition.update_settings(settings.clone());
                    partition
                }
                None => {
                    let tp = TopicPartition {
                        topic: meta.name.clone(),
                        partition: p.partition,
                    };
                    let log = self.log_dir.get_or_create(&tp, settings.log.clone())?;
                    log.set_config(settings.log.clone());
                    let partition = Partition::new(
                        meta.name.clone(),
                        p.partition,
                        log,
                        settings.clone(),
                        node,
                        self.topic_stats.topic(&meta.name),
                    )?;
                    // Kafka leaves expired producers out when it loads the state, so a
                    // restart does not bring them back until the next check.
                    partition.expire_producers(now_ms(), self.producer_id_expiration_ms());
                    Arc::new(partition)
                }
            };
            partition.apply_metadata(p, now_ms());
            replicas.push(Some(partition));
        }
        Ok(LocalTopic {
            topic_id: meta.topic_id,
            meta: Arc::clone(meta),
            replicas,
            leading,
        })
    }

    /// Once the metadata has caught up after start-up: deletes logs on disk that it no
    /// longer places here (their partitions were deleted or moved while this node was down).
    fn delete_orphaned_logs(&self) -> Result<(), BrokerError> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.caught_up.load(Relaxed) || self.scanned_disk.swap(true, Relaxed) {
            return Ok(());
        }
        let topics = self.topics.read().clone();
        for (tp, _) in self.log_dir.logs() {
            let known = topics
                .get(&tp.topic)
                .is_some_and(|t| t.hosted().any(|p| p.index == tp.partition));
            if !known {
                tracing::info!(topic = %tp.topic, partition = tp.partition, "deleting log of a removed partition");
                self.log_dir.delete(&tp)?;
            }
        }
        Ok(())
    }
}
