package strata.spring;

import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.TopicPartition;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Profile;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.config.TopicBuilder;
import org.springframework.kafka.core.ConsumerFactory;
import org.springframework.kafka.core.KafkaAdmin;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.util.backoff.FixedBackOff;

/** Topics and listener container factories of the scenario. */
@Configuration
@Profile("!transactions")
public class KafkaConfig {
    /** Blocking retries of a failing order before it goes to the dead-letter topic. */
    static final long ORDER_RETRIES = 2;

    @Bean
    KafkaAdmin.NewTopics scenarioTopics(@Value("${scenario.prefix}") String prefix,
                                        @Value("${scenario.replication}") int replication) {
        return new KafkaAdmin.NewTopics(
                topic(prefix + "-orders", 6, replication),
                topic(prefix + "-orders-dlt", 6, replication),
                topic(prefix + "-batch", 3, replication),
                topic(prefix + "-payments", 3, replication));
    }

    private static NewTopic topic(String name, int partitions, int replication) {
        return TopicBuilder.name(name).partitions(partitions).replicas(replication).build();
    }

    /** The default factory: the dead-letter listener and the {@code @RetryableTopic} listener. */
    @Bean
    ConcurrentKafkaListenerContainerFactory<String, String> kafkaListenerContainerFactory(
            ConsumerFactory<String, String> consumerFactory) {
        ConcurrentKafkaListenerContainerFactory<String, String> factory = new ConcurrentKafkaListenerContainerFactory<>();
        factory.setConsumerFactory(consumerFactory);
        return factory;
    }

    /** Orders: failures retried in place, then published to {@code <topic>-dlt}, same partition. */
    @Bean
    ConcurrentKafkaListenerContainerFactory<String, String> ordersFactory(
            ConsumerFactory<String, String> consumerFactory, KafkaTemplate<String, String> template) {
        ConcurrentKafkaListenerContainerFactory<String, String> factory = new ConcurrentKafkaListenerContainerFactory<>();
        factory.setConsumerFactory(consumerFactory);
        DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(template,
                (record, exception) -> new TopicPartition(record.topic() + "-dlt", record.partition()));
        factory.setCommonErrorHandler(new DefaultErrorHandler(recoverer, new FixedBackOff(50L, ORDER_RETRIES)));
        return factory;
    }

    @Bean
    ConcurrentKafkaListenerContainerFactory<String, String> batchFactory(ConsumerFactory<String, String> consumerFactory) {
        ConcurrentKafkaListenerContainerFactory<String, String> factory = new ConcurrentKafkaListenerContainerFactory<>();
        factory.setConsumerFactory(consumerFactory);
        factory.setBatchListener(true);
        return factory;
    }
}
