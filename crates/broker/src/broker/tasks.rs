//! The broker's periodic tasks: following metadata, ISR maintenance, taking back preferred
//! leaderships, compaction, retention and housekeeping, and the coordinators' ticks.

use std::sync::Arc;
use std::time::Duration;

use controller::Command;

use super::{now_ms, Broker};
use crate::partition::Partition;

impl Broker {
    /// Registers this broker with the quorum (and keeps its lease), follows metadata
    /// changes, and runs retention, producer-state snapshots, the log cleaner and group
    /// timers until the process ends.
    pub fn spawn_background_tasks(self: &Arc<Self>) {
        let (host, port) = self.config.inter_broker().advertised.clone();
        let listeners = self
            .config
            .listeners
            .iter()
            .map(|l| controller::ListenerEndpoint {
                name: l.name.clone(),
                host: l.advertised.0.clone(),
                port: l.advertised.1,
            })
            .collect();
        self.controller
            .start_broker_lease(controller::BrokerRegistration {
                host,
                port,
                rack: self.config.rack.clone(),
                listeners,
            });
        let registered = Arc::clone(self);
        tokio::spawn(async move {
            registered.controller.wait_registered().await;
            registered
                .caught_up
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let broker = Arc::clone(&registered);
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || broker.reconcile()).await {
                tracing::error!(%error, "applying the caught-up metadata failed");
            }
            registered.ready.send_replace(true);
        });
        let follower = Arc::clone(self);
        let mut images = self.controller.subscribe();
        tokio::spawn(async move {
            while images.changed().await.is_ok() {
                images.borrow_and_update();
                let broker = Arc::clone(&follower);
                let reconciled = tokio::task::spawn_blocking(move || broker.reconcile()).await;
                if let Ok(Err(error)) = reconciled {
                    tracing::error!(%error, "applying a metadata change failed");
                }
            }
        });
        self.fetchers.start(tokio::runtime::Handle::current());
        let lag_ms = self.config.replica_lag_time_max_ms;
        let isr_period = Duration::from_millis((lag_ms / 2).clamp(10, 250));
        self.every(isr_period, move |broker| async move {
            broker.maintain_isr(lag_ms as i64);
        });
        if self.config.auto_leader_rebalance_enable {
            let period = Duration::from_secs(self.config.leader_imbalance_check_interval_seconds);
            self.every(period, |broker| async move {
                broker.reclaim_preferred_leadership().await;
            });
        }
        self.every(coordinator::group::TICK, |broker| async move {
            broker.groups.tick();
        });
        self.every(Duration::from_secs(1), |broker| async move {
            broker.txns.tick(now_ms()).await;
        });
        let check = Duration::from_millis(self.config.producer_id_expiration_check_interval_ms);
        self.every(check, |broker| async move {
            let _ = tokio::task::spawn_blocking(move || broker.expire_producers()).await;
        });
        let backoff = Duration::from_millis(self.config.log_cleaner_backoff_ms);
        self.every(backoff, |broker| async move {
            let _ = tokio::task::spawn_blocking(move || broker.compact_logs()).await;
        });
        let interval = Duration::from_millis(self.config.retention_check_interval_ms);
        self.every(interval, |broker| async move {
            let retention_ms = broker
                .config
                .offsets_retention_minutes
                .saturating_mul(60_000);
            broker.groups.expire_offsets(now_ms(), retention_ms).await;
            let _ = tokio::task::spawn_blocking(move || broker.housekeeping()).await;
        });
    }

    /// Runs `work` every `period`, the first time one period from now, until the process
    /// ends; a run that overlaps the next tick delays it.
    fn every<F, Fut>(self: &Arc<Self>, period: Duration, work: F)
    where
        F: Fn(Arc<Self>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let broker = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                work(Arc::clone(&broker)).await;
            }
        });
    }

    /// Submits the ISR changes the partitions led here call for (laggards out, caught-up
    /// followers in), each on its own task.
    fn maintain_isr(self: &Arc<Self>, lag_ms: i64) {
        let now = now_ms();
        let image = self.image();
        let live = |id: i32| image.broker(id).is_some_and(|b| !b.fenced);
        let led: Vec<Arc<Partition>> = self
            .topics
            .read()
            .values()
            .flat_map(|t| t.led_partitions().cloned().collect::<Vec<_>>())
            .collect();
        for p in led {
            let Some((isr, leader_epoch, partition_epoch)) =
                p.propose_isr_change(now, lag_ms, live)
            else {
                continue;
            };
            tracing::info!(topic = %p.topic, partition = p.index, ?isr, "changing the ISR");
            let command = Command::AlterPartition {
                topic: p.topic.clone(),
                partition: p.index,
                leader: self.config.node_id,
                leader_epoch,
                partition_epoch,
                isr,
            };
            let broker = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(error) = broker.submit(command).await {
                    tracing::info!(topic = %p.topic, partition = p.index, %error, "ISR change refused");
                    p.abandon_isr_change();
                }
            });
        }
    }

    /// Asks for the leadership of partitions whose preferred replica is this node, where it
    /// is in sync but another replica leads (after this node restarted, say).
    async fn reclaim_preferred_leadership(self: &Arc<Self>) {
        let node = self.config.node_id;
        let image = self.image();
        if image.broker(node).is_none_or(|b| b.fenced) {
            return;
        }
        let partitions: Vec<(String, i32)> = image
            .shared_topics()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.replicas[0] == node && p.leader != node && p.isr.contains(&node))
                    .map(|p| (t.name.clone(), p.partition))
                    .collect::<Vec<_>>()
            })
            .collect();
        if partitions.is_empty() {
            return;
        }
        let count = partitions.len();
        match self
            .submit(Command::ElectLeaders {
                partitions,
                election: controller::Election::Preferred,
            })
            .await
        {
            Ok(_) => tracing::info!(partitions = count, "took back preferred leaderships"),
            Err(error) => tracing::warn!(%error, "preferred leader election failed"),
        }
    }

    /// One log-cleaner pass: compacts every `cleanup.policy=compact` log.
    fn compact_logs(&self) {
        let partitions: std::collections::HashMap<(String, i32), Arc<Partition>> = self
            .all_partitions()
            .into_iter()
            .map(|p| ((p.topic.clone(), p.index), p))
            .collect();
        // An emptied batch is kept only for a producer the partition still has state for.
        let active = |tp: &segment_store::TopicPartition| {
            partitions
                .get(&(tp.topic.clone(), tp.partition))
                .map(|p| p.producer_ids())
        };
        match self.log_dir.compact_all_retaining(now_ms(), active) {
            Ok(stats) if stats.records_before != stats.records_after || stats.segments > 0 => {
                tracing::info!(
                    segments = stats.segments,
                    segments_after = stats.segments_after,
                    records_before = stats.records_before,
                    records_after = stats.records_after,
                    "compacted logs"
                )
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "log compaction failed"),
        }
    }

    /// `producer.id.expiration.ms` as now in effect (it is dynamic, as in Kafka): this
    /// broker's dynamic value, the cluster default, the file, the default.
    pub(super) fn producer_id_expiration_ms(&self) -> i64 {
        let image = self.image();
        crate::config::dynamic::Layers::new(&self.config, &image)
            .value("producer.id.expiration.ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|ms| *ms >= 1)
            .unwrap_or(self.config.producer_id_expiration_ms)
    }

    /// One producer-expiry pass (every `producer.id.expiration.check.interval.ms`): each
    /// partition forgets the producers idle for `producer.id.expiration.ms`.
    fn expire_producers(&self) {
        let (now, expiration_ms) = (now_ms(), self.producer_id_expiration_ms());
        for p in self.all_partitions() {
            let expired = p.expire_producers(now, expiration_ms);
            if expired > 0 {
                tracing::debug!(topic = %p.topic, partition = p.index, expired, "expired idle producers");
            }
        }
    }

    /// One housekeeping pass: retention, producer-state snapshots, checkpoints.
    fn housekeeping(&self) {
        let now = now_ms();
        for p in self.all_partitions() {
            match p.log.enforce_retention(now) {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(topic = %p.topic, partition = p.index, deleted, "retention deleted segments")
                }
                Err(error) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, %error, "retention failed")
                }
            }
            if let Err(error) = p.snapshot_producer_state() {
                tracing::warn!(topic = %p.topic, partition = p.index, %error, "producer state snapshot failed");
            }
        }
        if let Err(error) = self.log_dir.checkpoint() {
            tracing::warn!(%error, "writing checkpoints failed");
        }
    }
}
