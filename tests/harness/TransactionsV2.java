// Kafka's Java client (4.4.0) against Strata, run by tests/harness/java.rs (transactions_v2)
// as a single-file program: `java -cp kafka-clients.jar:slf4j-api.jar TransactionsV2.java
// <bootstrap> <scenario>`. Each scenario checks what it states and exits non-zero with a
// message on the first difference; it prints "ok <scenario>" on success.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FeatureUpdate;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.UpdateFeaturesOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TransactionsV2 {
    static String bootstrap;

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    static KafkaProducer<String, String> producer(String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    static void createTopic(String topic, int partitions) throws Exception {
        try (Admin a = admin()) {
            a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
    }

    /** Every value a read_committed consumer reads from the start of `topic` until `expected` arrived or 20 s. */
    static List<String> readCommitted(String topic, int expected) {
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer("reader-" + UUID.randomUUID())) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (System.currentTimeMillis() < deadline && values.size() < expected) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    values.add(r.value());
                }
            }
            // A little longer: anything beyond `expected` would be a defect too.
            long more = System.currentTimeMillis() + 1_000;
            while (System.currentTimeMillis() < more) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    values.add(r.value());
                }
            }
        }
        return values;
    }

    static TransactionDescription describe(String txnId) throws Exception {
        try (Admin a = admin()) {
            return a.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
        }
    }

    static short finalizedTransactionVersion() throws Exception {
        try (Admin a = admin()) {
            Map<String, FinalizedVersionRange> f =
                a.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS).finalizedFeatures();
            FinalizedVersionRange r = f.get("transaction.version");
            return r == null ? 0 : r.maxVersionLevel();
        }
    }

    /** Commits, aborts and commits again; read_committed sees the committed records only,
     *  and with transaction version 2 each end bumps the producer epoch (bumpsPerEnd 1) or
     *  not (0). */
    static void commitAbort(String topic, String txnId, int bumpsPerEnd) throws Exception {
        try (KafkaProducer<String, String> p = producer(txnId)) {
            p.initTransactions();
            int epoch0 = describe(txnId).producerEpoch();
            String[] kinds = {"commit", "abort", "commit"};
            for (int t = 0; t < kinds.length; t++) {
                p.beginTransaction();
                for (int i = 0; i < 4; i++) {
                    p.send(new ProducerRecord<>(topic, i % 2, "k" + i, kinds[t] + "-" + t + "-" + i));
                }
                if (kinds[t].equals("commit")) {
                    p.commitTransaction();
                } else {
                    p.flush();
                    p.abortTransaction();
                }
            }
            TransactionDescription d = describe(txnId);
            check(d.producerEpoch() == epoch0 + 3 * bumpsPerEnd,
                "epoch after three ends: " + d.producerEpoch() + ", first " + epoch0
                    + ", expected " + (epoch0 + 3 * bumpsPerEnd));
        }
        List<String> values = readCommitted(topic, 8);
        check(values.size() == 8, "read_committed read " + values);
        check(values.stream().allMatch(v -> v.startsWith("commit-")), "aborted records visible: " + values);
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        String scenario = args[1];
        String run = UUID.randomUUID().toString().substring(0, 8);
        switch (scenario) {
            case "commit-abort" -> {
                check(finalizedTransactionVersion() == 2, "transaction.version finalized at 2");
                String topic = "tv2-" + run;
                createTopic(topic, 2);
                commitAbort(topic, "tv2-txn-" + run, 1);
            }
            case "zombie" -> {
                String topic = "tv2-zombie-" + run;
                createTopic(topic, 2);
                String txnId = "tv2-zombie-" + run;
                KafkaProducer<String, String> zombie = producer(txnId);
                zombie.initTransactions();
                zombie.beginTransaction();
                zombie.send(new ProducerRecord<>(topic, 0, "k", "zombie-open")).get(30, TimeUnit.SECONDS);
                try (KafkaProducer<String, String> fresh = producer(txnId)) {
                    // Fences the zombie: its open transaction is aborted.
                    fresh.initTransactions();
                    boolean fenced = false;
                    try {
                        zombie.send(new ProducerRecord<>(topic, 1, "k", "zombie-late")).get(30, TimeUnit.SECONDS);
                        zombie.commitTransaction();
                    } catch (Exception e) {
                        Throwable cause = e.getCause() != null ? e.getCause() : e;
                        fenced = e instanceof ProducerFencedException || cause instanceof ProducerFencedException
                            || e instanceof InvalidProducerEpochException || cause instanceof InvalidProducerEpochException
                            || e instanceof KafkaException;
                        System.out.println("zombie refused: " + e);
                    }
                    check(fenced, "the zombie's commit went through");
                    fresh.beginTransaction();
                    fresh.send(new ProducerRecord<>(topic, 0, "k", "fresh-0"));
                    fresh.send(new ProducerRecord<>(topic, 1, "k", "fresh-1"));
                    fresh.commitTransaction();
                }
                try {
                    zombie.close(Duration.ofSeconds(5));
                } catch (Exception ignored) {
                }
                List<String> values = readCommitted(topic, 2);
                check(values.size() == 2 && values.stream().allMatch(v -> v.startsWith("fresh-")),
                    "read_committed after the fence: " + values);
            }
            case "offsets" -> {
                // consume-transform-produce: TxnOffsetCommit v5 adds the group's offsets partition.
                String input = "tv2-in-" + run;
                String output = "tv2-out-" + run;
                String group = "tv2-group-" + run;
                createTopic(input, 1);
                createTopic(output, 1);
                try (KafkaProducer<String, String> seed = producer("tv2-seed-" + run)) {
                    seed.initTransactions();
                    seed.beginTransaction();
                    for (int i = 0; i < 6; i++) {
                        seed.send(new ProducerRecord<>(input, 0, "k", "in-" + i));
                    }
                    seed.commitTransaction();
                }
                try (KafkaProducer<String, String> p = producer("tv2-copy-" + run);
                     KafkaConsumer<String, String> c = consumer(group)) {
                    p.initTransactions();
                    c.subscribe(List.of(input));
                    int copied = 0;
                    boolean abortNext = true;
                    long deadline = System.currentTimeMillis() + 30_000;
                    while (copied < 6 && System.currentTimeMillis() < deadline) {
                        var records = c.poll(Duration.ofMillis(200));
                        if (records.isEmpty()) {
                            continue;
                        }
                        p.beginTransaction();
                        long next = -1;
                        for (ConsumerRecord<String, String> r : records) {
                            p.send(new ProducerRecord<>(output, 0, r.key(), "out-" + r.value()));
                            next = r.offset() + 1;
                        }
                        TopicPartition tp = new TopicPartition(input, 0);
                        p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(next)), c.groupMetadata());
                        if (abortNext) {
                            // The first batch is aborted: its output and its offsets are discarded.
                            p.abortTransaction();
                            abortNext = false;
                            c.seek(tp, records.records(tp).get(0).offset());
                        } else {
                            p.commitTransaction();
                            copied += records.count();
                        }
                    }
                    check(copied == 6, "copied " + copied + " of 6");
                }
                try (Admin a = admin()) {
                    Map<TopicPartition, OffsetAndMetadata> committed =
                        a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                    OffsetAndMetadata o = committed.get(new TopicPartition(input, 0));
                    check(o != null && o.offset() == 6, "committed offsets " + committed);
                }
                List<String> values = readCommitted(output, 6);
                check(values.size() == 6, "output " + values);
            }
            case "upgrade" -> {
                // kafka-features.sh upgrade: a new cluster starts at transaction.version 0.
                try (Admin a = admin()) {
                    a.updateFeatures(Map.of("transaction.version",
                            new FeatureUpdate((short) 2, FeatureUpdate.UpgradeType.UPGRADE)),
                        new UpdateFeaturesOptions()).all().get(30, TimeUnit.SECONDS);
                }
                check(finalizedTransactionVersion() == 2, "transaction.version upgraded to 2");
            }
            case "pinned-lower" -> {
                // kafka-features.sh downgrade: transaction.version 0; clients use the classic protocol.
                try (Admin a = admin()) {
                    a.updateFeatures(Map.of("transaction.version",
                            new FeatureUpdate((short) 0, FeatureUpdate.UpgradeType.SAFE_DOWNGRADE)),
                        new UpdateFeaturesOptions()).all().get(30, TimeUnit.SECONDS);
                }
                check(finalizedTransactionVersion() == 0, "transaction.version downgraded to 0");
                String topic = "tv1-" + run;
                createTopic(topic, 2);
                commitAbort(topic, "tv1-txn-" + run, 0);
                try (Admin a = admin()) {
                    a.updateFeatures(Map.of("transaction.version",
                            new FeatureUpdate((short) 2, FeatureUpdate.UpgradeType.UPGRADE)),
                        new UpdateFeaturesOptions()).all().get(30, TimeUnit.SECONDS);
                }
                check(finalizedTransactionVersion() == 2, "transaction.version upgraded to 2");
            }
            default -> check(false, "unknown scenario " + scenario);
        }
        System.out.println("ok " + scenario);
    }
}
