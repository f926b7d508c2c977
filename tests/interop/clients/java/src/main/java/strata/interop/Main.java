package strata.interop;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Kafka's Java client (kafka-clients) and Kafka Streams as interop programs.
 *
 * <pre>
 *   produce      --bootstrap H:P --topic T --codec C --count N --prefix P [--timeout S]
 *   consume      --bootstrap H:P --topic T --count N --timeout S [--isolation read_committed]
 *                [--extra-wait-ms MS]
 *   group-member --bootstrap H:P --topic T --group G [--session-timeout-ms N] [--assignor A]
 *                [--group-protocol classic|consumer]
 *   wordcount    --bootstrap H:P --input T --output T --app-id ID --state-dir DIR [--timeout S]
 *                [--guarantee at_least_once|exactly_once_v2] [--replication N] [--threads N]
 *                [--commit-interval-ms N]
 *   transactions --bootstrap H:P --prefix P
 *   txn-copy     --bootstrap H:P --input T --output T --group G --txn-id ID --count N
 *                [--abort-every K] [--group-protocol classic|consumer] [--timeout S]
 * </pre>
 *
 * produce and consume follow tests/interop/clients/common.py (record recipe, JSON lines, exit
 * codes 0 success, 1 Kafka or timeout failure, 2 usage); group-member prints what
 * group_member.py prints; wordcount runs a Streams word count (input lines -> output word ->
 * count as a big-endian long; at_least_once unless --guarantee says otherwise, internal topics
 * with --replication replicas, default the broker's), prints {"state": S} on every state change
 * and closes cleanly on SIGTERM; transactions prints one JSON line per transactional id starting
 * with P that the cluster's coordinators know (ListTransactions, then DescribeTransactions):
 * {"id", "coordinator", "state", "partitions"}. consume with --extra-wait-ms keeps polling that
 * long after --count records and prints what else arrives (so a test sees records that should
 * not be there). txn-copy is a transactional consume-transform-produce loop (see txnCopy).
 */
public final class Main {
    static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");
    static final long BASE_TIMESTAMP_MS = 1_700_000_000_000L;
    static final byte[] VALUE_SUFFIX = concat("|\u00e9\u2713\u20ac|".getBytes(StandardCharsets.UTF_8),
            new byte[] {0x00, 0x01, 0x7F, (byte) 0x80, (byte) 0xFE, (byte) 0xFF});
    static final byte[] H2_VALUE = {0x00, 0x01};
    static final PrintStream OUT = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
            StandardCharsets.UTF_8);

    private Main() {}

    public static void main(String[] argv) {
        if (argv.length == 0) {
            usage("no command");
        }
        Map<String, String> args = parse(argv);
        try {
            switch (argv[0]) {
                case "produce" -> produce(args);
                case "consume" -> consume(args);
                case "group-member" -> groupMember(args);
                case "wordcount" -> wordCount(args);
                case "transactions" -> transactions(args);
                case "txn-copy" -> txnCopy(args);
                default -> usage("unknown command " + argv[0]);
            }
        } catch (KafkaException | IllegalStateException e) {
            fail(e.toString());
        }
        OUT.flush();
        System.exit(0);
    }

    // ------------------------------------------------------------------ produce

    static void produce(Map<String, String> args) {
        String topic = need(args, "topic");
        String codec = args.getOrDefault("codec", "none");
        if (!CODECS.contains(codec)) {
            usage("--codec must be one of " + CODECS);
        }
        int count = intArg(args, "count");
        String prefix = need(args, "prefix");
        double timeout = doubleArg(args, "timeout", 30);
        watchdog(timeout + 15, "produce");
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        int requestTimeout = (int) (Math.min(timeout, 10) * 1000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, requestTimeout);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Math.max((int) (timeout * 1000), requestTimeout + 5));
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (long) (timeout * 1000));
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < count; i++) {
                List<Header> headers = List.of(
                        new RecordHeader("h1", (prefix + "-" + i).getBytes(StandardCharsets.UTF_8)),
                        new RecordHeader("h2", H2_VALUE));
                sent.add(producer.send(new ProducerRecord<>(topic, null, BASE_TIMESTAMP_MS + i,
                        (prefix + "-key-" + i).getBytes(StandardCharsets.UTF_8),
                        concat((prefix + "-value-" + i).getBytes(StandardCharsets.UTF_8), VALUE_SUFFIX), headers)));
            }
            producer.flush();
            int failed = 0;
            String first = null;
            for (Future<RecordMetadata> f : sent) {
                try {
                    f.get();
                } catch (Exception e) {
                    failed++;
                    if (first == null) {
                        first = String.valueOf(e.getCause() != null ? e.getCause() : e);
                    }
                }
            }
            if (failed > 0) {
                fail(failed + " of " + count + " records not delivered; first error: " + first);
            }
        }
    }

    // ------------------------------------------------------------------ consume

    static void consume(Map<String, String> args) {
        String topic = need(args, "topic");
        int count = intArg(args, "count");
        double timeout = doubleArg(args, "timeout", -1);
        if (timeout <= 0) {
            usage("--timeout must be > 0");
        }
        watchdog(timeout + 15, "consume");
        long deadline = System.nanoTime() + (long) (timeout * 1e9);
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        String isolation = args.getOrDefault("isolation", "read_uncommitted");
        if (!isolation.equals("read_committed") && !isolation.equals("read_uncommitted")) {
            usage("--isolation must be read_committed or read_uncommitted");
        }
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        long extraWaitMs = (long) doubleArg(args, "extra-wait-ms", 0);
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = List.of();
            while (parts.isEmpty()) {
                List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(5));
                if (infos != null) {
                    parts = infos.stream().map(i -> new TopicPartition(topic, i.partition())).toList();
                }
                if (parts.isEmpty() && System.nanoTime() > deadline) {
                    fail("topic " + topic + " has no partitions in metadata");
                }
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            int printed = 0;
            while (printed < count) {
                long left = (deadline - System.nanoTime()) / 1_000_000;
                if (left <= 0) {
                    fail("read " + printed + " of " + count + " records before the timeout");
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 500)))) {
                    emit(r);
                    printed++;
                }
            }
            long extraUntil = System.nanoTime() + extraWaitMs * 1_000_000;
            while (System.nanoTime() < extraUntil) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    emit(r);
                }
            }
        }
    }

    // ------------------------------------------------------------------ txn-copy

    /**
     * Copies --count records from --input to --output exactly once: a read_committed consumer
     * of group --group polls, a producer with transactional.id --txn-id sends each record's
     * value prefixed with "copy-" (same key, same partition number) and the consumed positions with
     * sendOffsetsToTransaction(offsets, groupMetadata()), then commits. Every --abort-every'th
     * transaction is flushed and aborted instead, and the consumer seeks back to the group's
     * committed offsets to redo it; after each commit the group's offsets must be the
     * transaction's. --group-protocol picks the group's protocol (KIP-848's
     * member epoch is then the generation of groupMetadata()). Prints {"transactions": T, "aborted": A, "copied": C}; exits
     * 0 once C (records of committed transactions) reaches --count.
     */
    static void txnCopy(Map<String, String> args) {
        String input = need(args, "input");
        String output = need(args, "output");
        int count = intArg(args, "count");
        int abortEvery = args.containsKey("abort-every") ? intArg(args, "abort-every") : 0;
        double timeout = doubleArg(args, "timeout", 60);
        watchdog(timeout + 15, "txn-copy");
        long deadline = System.nanoTime() + (long) (timeout * 1e9);
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        c.put(ConsumerConfig.GROUP_ID_CONFIG, need(args, "group"));
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 200);
        switch (args.getOrDefault("group-protocol", "classic")) {
            case "classic" -> {
                c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000);
                c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1_000);
            }
            case "consumer" -> c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            default -> usage("--group-protocol must be classic or consumer");
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, need(args, "txn-id"));
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 30_000);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (long) (timeout * 1000));
        byte[] prefix = "copy-".getBytes(StandardCharsets.UTF_8);
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
             KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            consumer.subscribe(List.of(input));
            long copied = 0;
            int transactions = 0;
            int aborted = 0;
            while (copied < count) {
                if (System.nanoTime() > deadline) {
                    fail("copied " + copied + " of " + count + " records before the timeout (" + transactions
                            + " transactions, " + aborted + " aborted)");
                }
                var records = consumer.poll(Duration.ofMillis(500));
                if (records.isEmpty()) {
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    producer.send(new ProducerRecord<>(output, r.partition(), r.key(), concat(prefix, r.value())));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                transactions++;
                if (abortEvery > 0 && transactions % abortEvery == 0) {
                    // The records reach the log before the abort, so readers must skip them.
                    producer.flush();
                    producer.abortTransaction();
                    aborted++;
                    Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(consumer.assignment());
                    for (TopicPartition tp : consumer.assignment()) {
                        OffsetAndMetadata at = committed.get(tp);
                        if (at == null) {
                            consumer.seekToBeginning(List.of(tp));
                        } else {
                            consumer.seek(tp, at.offset());
                        }
                    }
                } else {
                    producer.commitTransaction();
                    copied += records.count();
                    // Once the commit returned, the group's offsets are the transaction's (the
                    // read_committed consumer fetches them with requireStable).
                    Map<TopicPartition, OffsetAndMetadata> now = consumer.committed(offsets.keySet());
                    for (var e : offsets.entrySet()) {
                        OffsetAndMetadata at = now.get(e.getKey());
                        if (at == null || at.offset() != e.getValue().offset()) {
                            // Whether the broker only lagged: what it answers a moment later.
                            sleep(500);
                            fail("offset of " + e.getKey() + " fetched right after commit: " + at
                                    + ", the transaction committed " + e.getValue().offset() + " (transaction "
                                    + transactions + "); 500 ms later: " + consumer.committed(offsets.keySet()));
                        }
                    }
                }
            }
            OUT.println("{\"transactions\": " + transactions + ", \"aborted\": " + aborted + ", \"copied\": "
                    + copied + "}");
            OUT.flush();
        }
    }

    static void emit(ConsumerRecord<byte[], byte[]> r) {
        String headers = Arrays.stream(r.headers().toArray())
                .map(h -> "[" + jsonString(h.key()) + ", " + hexOrNull(h.value()) + "]")
                .collect(Collectors.joining(", ", "[", "]"));
        OUT.println("{\"partition\": " + r.partition() + ", \"offset\": " + r.offset() + ", \"key\": "
                + hexOrNull(r.key()) + ", \"value\": " + hexOrNull(r.value()) + ", \"headers\": " + headers
                + ", \"timestamp\": " + r.timestamp() + "}");
        OUT.flush();
    }

    // ------------------------------------------------------------------ group-member

    static void groupMember(Map<String, String> args) {
        String topic = need(args, "topic");
        String assignor = args.getOrDefault("assignor", "range");
        String protocol = args.getOrDefault("group-protocol", "classic");
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        c.put(ConsumerConfig.GROUP_ID_CONFIG, need(args, "group"));
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        boolean incremental;
        if (protocol.equals("consumer")) {
            c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            c.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor);
            incremental = true;
        } else {
            c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.parseInt(args.getOrDefault("session-timeout-ms", "6000")));
            c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
            String strategy = switch (assignor) {
                case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
                case "roundrobin" -> "org.apache.kafka.clients.consumer.RoundRobinAssignor";
                case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
                default -> throw usage("--assignor must be range, roundrobin or cooperative-sticky");
            };
            c.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, strategy);
            incremental = assignor.equals("cooperative-sticky");
        }
        KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        AtomicBoolean running = new AtomicBoolean(true);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            running.set(false);
            consumer.wakeup();
            try {
                closed.await(15, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                OUT.println("{\"assigned\": " + sortedPartitions(partitions) + ", \"incremental\": " + incremental + "}");
                OUT.flush();
            }

            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                OUT.println("{\"revoked\": " + sortedPartitions(partitions) + "}");
                OUT.flush();
            }
        });
        try {
            while (running.get()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    OUT.println("{\"p\": " + r.partition() + ", \"o\": " + r.offset() + ", \"v\": "
                            + jsonString(new String(r.value(), StandardCharsets.UTF_8)) + "}");
                    OUT.flush();
                    try {
                        consumer.commitSync(Map.of(new TopicPartition(r.topic(), r.partition()),
                                new OffsetAndMetadata(r.offset() + 1)));
                    } catch (WakeupException e) {
                        throw e;
                    } catch (KafkaException e) {
                        // A commit refused during a rebalance: the record will be seen again, as in Kafka.
                        System.err.println("{\"commit_error\": " + jsonString(e.toString()) + "}");
                    }
                }
            }
        } catch (WakeupException e) {
            // SIGTERM
        } finally {
            consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(10)));
            closed.countDown();
        }
    }

    static String sortedPartitions(Collection<TopicPartition> partitions) {
        return partitions.stream().map(TopicPartition::partition).sorted().map(String::valueOf)
                .collect(Collectors.joining(", ", "[", "]"));
    }

    // ------------------------------------------------------------------ wordcount

    static void wordCount(Map<String, String> args) {
        String input = need(args, "input");
        String output = need(args, "output");
        double timeout = doubleArg(args, "timeout", 120);
        watchdog(timeout, "wordcount");
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, need(args, "app-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        p.put(StreamsConfig.STATE_DIR_CONFIG, need(args, "state-dir"));
        String guarantee = args.getOrDefault("guarantee", StreamsConfig.AT_LEAST_ONCE);
        if (!List.of(StreamsConfig.AT_LEAST_ONCE, StreamsConfig.EXACTLY_ONCE_V2).contains(guarantee)) {
            usage("--guarantee must be at_least_once or exactly_once_v2");
        }
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.containsKey("threads") ? intArg(args, "threads") : 2);
        if (args.containsKey("replication")) {
            p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, intArg(args, "replication"));
        }
        // Every count reaches the output topic at once, and offsets are committed often.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG,
                args.containsKey("commit-interval-ms") ? intArg(args, "commit-interval-ms") : 200);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10_000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 500);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.stream(line.toLowerCase(Locale.ROOT).split("\\W+"))
                        .filter(w -> !w.isEmpty()).toList())
                .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.as("word-counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(builder.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean(false);
        streams.setStateListener((now, before) -> {
            OUT.println("{\"state\": " + jsonString(now.name()) + "}");
            OUT.flush();
            if (now == KafkaStreams.State.ERROR) {
                failed.set(true);
                done.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("error: stream thread died: " + e);
            failed.set(true);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            done.countDown();
            streams.close(Duration.ofSeconds(15));
        }));
        streams.start();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (failed.get()) {
            streams.close(Duration.ofSeconds(5));
            fail("Kafka Streams went to ERROR");
        }
    }

    // ------------------------------------------------------------------ transactions

    static void transactions(Map<String, String> args) {
        String prefix = need(args, "prefix");
        watchdog(30, "transactions");
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, need(args, "bootstrap"));
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        try (Admin admin = Admin.create(p)) {
            List<String> ids = admin.listTransactions().all().get().stream()
                    .map(TransactionListing::transactionalId)
                    .filter(id -> id.startsWith(prefix))
                    .sorted()
                    .toList();
            if (ids.isEmpty()) {
                return;
            }
            Map<String, TransactionDescription> described = admin.describeTransactions(ids).all().get();
            for (String id : ids) {
                TransactionDescription d = described.get(id);
                OUT.println("{\"id\": " + jsonString(id) + ", \"coordinator\": " + d.coordinatorId()
                        + ", \"state\": " + jsonString(d.state().toString()) + ", \"partitions\": "
                        + d.topicPartitions().stream().map(tp -> jsonString(tp.toString()))
                                .collect(Collectors.joining(", ", "[", "]")) + "}");
            }
        } catch (java.util.concurrent.ExecutionException e) {
            fail("ListTransactions/DescribeTransactions failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
    }

    // ------------------------------------------------------------------ helpers

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) {
                usage("unexpected argument " + a);
            }
            String name = a.substring(2);
            String value;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (i + 1 < argv.length) {
                value = argv[++i];
            } else {
                throw usage("--" + name + " needs a value");
            }
            args.put(name, value);
        }
        return args;
    }

    static String need(Map<String, String> args, String name) {
        String v = args.get(name);
        if (v == null) {
            usage("--" + name + " is required");
        }
        return v;
    }

    static int intArg(Map<String, String> args, String name) {
        try {
            int v = Integer.parseInt(need(args, name));
            if (v < 0) {
                usage("--" + name + " must be >= 0");
            }
            return v;
        } catch (NumberFormatException e) {
            throw usage("--" + name + " must be an integer");
        }
    }

    static double doubleArg(Map<String, String> args, String name, double fallback) {
        String v = args.get(name);
        try {
            return v == null ? fallback : Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw usage("--" + name + " must be a number");
        }
    }

    /** Ends the process with status 1 after `seconds`, whatever a client call is blocked on. */
    static void watchdog(double seconds, String what) {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep((long) (seconds * 1000));
            } catch (InterruptedException e) {
                return;
            }
            OUT.flush();
            System.err.printf("error: %s did not finish within %.0fs%n", what, seconds);
            System.err.flush();
            Runtime.getRuntime().halt(1);
        }, "watchdog");
        t.setDaemon(true);
        t.start();
    }

    static RuntimeException usage(String msg) {
        OUT.flush();
        System.err.println("error: " + msg);
        System.err.println("usage: produce|consume|group-member|wordcount|txn-copy --bootstrap HOST:PORT ... (see Main.java)");
        System.exit(2);
        return new IllegalStateException(msg);
    }

    static void fail(String msg) {
        OUT.flush();
        System.err.println("error: " + msg);
        System.err.flush();
        Runtime.getRuntime().halt(1);
    }

    static String hexOrNull(byte[] b) {
        if (b == null) {
            return "null";
        }
        StringBuilder s = new StringBuilder(b.length * 2 + 2).append('"');
        for (byte x : b) {
            s.append(Character.forDigit((x >> 4) & 0xF, 16)).append(Character.forDigit(x & 0xF, 16));
        }
        return s.append('"').toString();
    }

    static String jsonString(String v) {
        StringBuilder s = new StringBuilder(v.length() + 2).append('"');
        for (char ch : v.toCharArray()) {
            switch (ch) {
                case '"' -> s.append("\\\"");
                case '\\' -> s.append("\\\\");
                default -> {
                    if (ch < 0x20) {
                        s.append(String.format("\\u%04x", (int) ch));
                    } else {
                        s.append(ch);
                    }
                }
            }
        }
        return s.append('"').toString();
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
