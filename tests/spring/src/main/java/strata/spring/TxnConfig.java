package strata.spring;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Profile;
import org.springframework.kafka.config.TopicBuilder;
import org.springframework.kafka.core.KafkaAdmin;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.DefaultAfterRollbackProcessor;
import org.springframework.util.backoff.FixedBackOff;

/** Topics and rollback handling of the transactions profile. */
@Configuration
@Profile("transactions")
public class TxnConfig {
    /** Attempts after the first of a record whose transaction rolled back, before it is skipped. */
    static final long RETRIES = 2;

    @Bean
    KafkaAdmin.NewTopics txnTopics(@Value("${scenario.prefix}") String prefix,
                                   @Value("${scenario.replication}") int replication) {
        return new KafkaAdmin.NewTopics(
                TopicBuilder.name(prefix + "-tx-in").partitions(6).replicas(replication).build(),
                TopicBuilder.name(prefix + "-tx-out").partitions(3).replicas(replication).build());
    }

    /**
     * After a rollback the container seeks back and the record is tried again; after
     * {@link #RETRIES} more failures it is skipped, and its offset is committed in a
     * transaction of its own (Boot gives this bean to the listener container factory).
     */
    @Bean
    AfterRollbackProcessor<Object, Object> afterRollbackProcessor(KafkaTemplate<Object, Object> template,
                                                                  TxnTracker tracker) {
        return new DefaultAfterRollbackProcessor<>((record, e) -> tracker.skipped(String.valueOf(record.key())),
                new FixedBackOff(100L, RETRIES), template, true);
    }
}
