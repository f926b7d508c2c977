package strata.spring;

import java.nio.charset.StandardCharsets;
import java.util.List;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;
import org.springframework.context.annotation.Profile;
import org.springframework.kafka.annotation.BackOff;
import org.springframework.kafka.annotation.DltHandler;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.annotation.RetryableTopic;
import org.springframework.kafka.retrytopic.TopicSuffixingStrategy;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.stereotype.Component;

/** The scenario's listeners; each records what it saw in the {@link Tracker}. */
@Component
@Profile("!transactions")
public class Listeners {
    private final Tracker tracker;

    Listeners(Tracker tracker) {
        this.tracker = tracker;
    }

    @KafkaListener(id = "${scenario.prefix}-orders", topics = "${scenario.prefix}-orders", concurrency = "3",
            containerFactory = "ordersFactory")
    void order(ConsumerRecord<String, String> record) {
        tracker.orderThread(Thread.currentThread().getName());
        if (record.value().startsWith("poison")) {
            tracker.poisonAttempt(record.key());
            throw new IllegalArgumentException("poison record " + record.key());
        }
        tracker.order(record.key());
    }

    @KafkaListener(id = "${scenario.prefix}-orders-dlt", topics = "${scenario.prefix}-orders-dlt")
    void deadLetter(ConsumerRecord<String, String> record) {
        String originalTopic = header(record, KafkaHeaders.DLT_ORIGINAL_TOPIC);
        String message = header(record, KafkaHeaders.DLT_EXCEPTION_MESSAGE);
        String originalPartition = record.headers().lastHeader(KafkaHeaders.DLT_ORIGINAL_PARTITION) == null
                ? null : String.valueOf(java.nio.ByteBuffer.wrap(
                        record.headers().lastHeader(KafkaHeaders.DLT_ORIGINAL_PARTITION).value()).getInt());
        tracker.deadLetter(record.key(), originalTopic, originalPartition, record.partition(), message);
    }

    @KafkaListener(id = "${scenario.prefix}-batch", topics = "${scenario.prefix}-batch", containerFactory = "batchFactory")
    void batch(List<ConsumerRecord<String, String>> records) {
        tracker.batch(records.stream().map(ConsumerRecord::key).toList());
    }

    @RetryableTopic(attempts = "3", backOff = @BackOff(delay = 300, multiplier = 2.0),
            topicSuffixingStrategy = TopicSuffixingStrategy.SUFFIX_WITH_INDEX_VALUE,
            retryTopicSuffix = "-retry", dltTopicSuffix = "-dlt", autoCreateTopics = "true",
            numPartitions = "3", replicationFactor = "${scenario.replication}")
    @KafkaListener(id = "${scenario.prefix}-payments", topics = "${scenario.prefix}-payments")
    void payment(ConsumerRecord<String, String> record) {
        tracker.paymentAttempt(record.key(), record.topic());
        if (record.value().startsWith("doomed")) {
            throw new IllegalStateException("doomed payment " + record.key());
        }
        if (record.value().startsWith("flaky") && !record.topic().contains("-retry-")) {
            throw new IllegalStateException("flaky payment " + record.key() + " fails its first attempt");
        }
        tracker.paymentDone(record.key());
    }

    @DltHandler
    void paymentDeadLetter(ConsumerRecord<String, String> record) {
        tracker.paymentDeadLetter(record.key(), record.topic());
    }

    private static String header(ConsumerRecord<?, ?> record, String name) {
        Header h = record.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }
}
