package strata.spring;

import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Profile;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.stereotype.Component;
import org.springframework.transaction.annotation.Transactional;

/**
 * Consume-transform-produce in a Kafka transaction: the container begins it (Boot's
 * KafkaTransactionManager), the send to {@code tx-out} and the record's offset join it, and it
 * commits when the listener returns or aborts when it throws.
 */
@Component
@Profile("transactions")
public class TxnListener {
    private final KafkaTemplate<String, String> template;
    private final TxnTracker tracker;
    private final String out;

    TxnListener(KafkaTemplate<String, String> template, TxnTracker tracker,
                @Value("${scenario.prefix}") String prefix) {
        this.template = template;
        this.tracker = tracker;
        this.out = prefix + "-tx-out";
    }

    /**
     * Sends the record on, then throws for {@code poison-*} values (every attempt) and
     * {@code flaky-*} values (the first attempt): their sends must be rolled back.
     */
    @KafkaListener(id = "${scenario.prefix}-tx", topics = "${scenario.prefix}-tx-in", concurrency = "3")
    @Transactional("kafkaTransactionManager")
    public void process(ConsumerRecord<String, String> record) throws Exception {
        int attempt = tracker.attempt(record.key());
        // Acknowledged before the listener goes on: an attempt that throws leaves its record in
        // the log, for the transaction's ABORT marker to hide.
        template.send(out, record.key(), "processed-" + record.value() + "-attempt-" + attempt)
                .get(30, TimeUnit.SECONDS);
        if (record.value().startsWith("poison")) {
            throw new IllegalArgumentException("poison record " + record.key());
        }
        if (record.value().startsWith("flaky") && attempt == 1) {
            throw new IllegalStateException("flaky record " + record.key() + " fails its first attempt");
        }
    }
}
