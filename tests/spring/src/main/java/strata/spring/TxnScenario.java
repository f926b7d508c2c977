package strata.spring;

import static strata.spring.Checks.count;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.springframework.context.annotation.Profile;
import org.springframework.kafka.config.KafkaListenerEndpointRegistry;
import org.springframework.kafka.core.ConsumerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.stereotype.Component;

/**
 * The transactions profile's scenario: sends {@code tx-in} in transactions (and two
 * transactions it aborts), lets {@link TxnListener} process it, then reads {@code tx-out}
 * read_committed and read_uncommitted and checks that every good record's output is there
 * exactly once and that no output of a rolled-back attempt is visible to read_committed.
 */
@Component
@Profile("transactions")
public class TxnScenario {
    /** Input records per producer transaction. */
    static final int CHUNK = 50;
    static final int GHOSTS = 10;

    private final KafkaTemplate<String, String> template;
    private final KafkaListenerEndpointRegistry registry;
    private final TxnTracker tracker;
    private final ConsumerFactory<String, String> consumers;
    private final ScenarioSettings settings;
    private final Checks checks = new Checks();
    private int inputRetries;

    TxnScenario(KafkaTemplate<String, String> template, KafkaListenerEndpointRegistry registry, TxnTracker tracker,
                ConsumerFactory<String, String> consumers, ScenarioSettings settings) {
        this.template = template;
        this.registry = registry;
        this.tracker = tracker;
        this.consumers = consumers;
        this.settings = settings;
    }

    /** Runs the scenario; the process exit status (0 when every check passed). */
    int run() {
        long deadline = settings.start();
        String in = settings.prefix + "-tx-in";
        String out = settings.prefix + "-tx-out";
        if (!checks.listenersAssigned(registry, deadline)) {
            return finish();
        }

        Set<String> ok = new TreeSet<>();
        Set<String> flaky = new TreeSet<>();
        Set<String> poison = new TreeSet<>();
        Set<String> ghosts = new TreeSet<>();
        abortedSend(in, "g0-", ghosts);
        long started = System.nanoTime();
        boolean sent = true;
        for (int first = 0; first < settings.records && sent; first += CHUNK) {
            List<String[]> chunk = new ArrayList<>();
            for (int i = first; i < Math.min(settings.records, first + CHUNK); i++) {
                String key = "t-" + i;
                String kind = i % 100 == 50 ? "poison" : i % 100 == 25 ? "flaky" : "ok";
                (kind.equals("poison") ? poison : kind.equals("flaky") ? flaky : ok).add(key);
                chunk.add(new String[] {key, kind + "-" + i});
            }
            sent = sendInTransaction(in, chunk, deadline);
            if (first < settings.records / 2 && first + CHUNK >= settings.records / 2) {
                abortedSend(in, "g1-", ghosts);
                Scenario.mark("tx-half-sent");
            }
            if (settings.sendSeconds > 0) {
                long wait = started + (long) (settings.sendSeconds * 1e9 * (first + CHUNK) / settings.records) - System.nanoTime();
                if (wait > 0) {
                    Scenario.sleepNanos(wait);
                }
            }
        }
        Scenario.mark("all-sent");
        checks.check("tx-input-committed", sent, "an input transaction failed " + inputRetries + " times");

        Set<String> good = new TreeSet<>(ok);
        good.addAll(flaky);
        Scenario.waitFor(deadline, () -> poison.stream().allMatch(tracker.skips::containsKey)
                && good.stream().allMatch(tracker.attempts::containsKey));
        Map<String, List<String>> committed = read(out, "read_committed", good, deadline);
        Map<String, List<String>> all = read(out, "read_uncommitted", poison, deadline);

        // The consume-transform-produce output: every good record once, nothing rolled back.
        List<String> missing = good.stream().filter(k -> !committed.containsKey(k)).toList();
        List<String> twice = good.stream().filter(k -> committed.getOrDefault(k, List.of()).size() > 1)
                .map(k -> k + "=" + committed.get(k)).toList();
        checks.check("tx-out-exactly-once", missing.isEmpty() && twice.isEmpty(), good.size() + " expected in " + out
                + " (read_committed), " + missing.size() + " missing " + Scenario.first(missing) + ", "
                + twice.size() + " more than once " + Scenario.first(twice));
        Set<String> visible = new TreeSet<>(committed.keySet());
        visible.removeAll(good);
        checks.check("tx-out-no-rolled-back", visible.isEmpty(),
                "outputs of rolled-back attempts visible to read_committed: " + Scenario.first(visible));
        if (!settings.allowRedelivery) {
            List<String> wrongFlaky = flaky.stream()
                    .filter(k -> !committed.getOrDefault(k, List.of()).equals(List.of(valueOf(k, "flaky", 2))))
                    .map(k -> k + "=" + committed.get(k)).toList();
            checks.check("tx-flaky-second-attempt", wrongFlaky.isEmpty(),
                    "flaky records whose committed output is not their second attempt's: " + Scenario.first(wrongFlaky));
        }

        // The rolled-back sends did reach the log: read_uncommitted sees them.
        long attempts = 1 + TxnConfig.RETRIES;
        List<String> wrongAborted = poison.stream()
                .filter(k -> {
                    int n = all.getOrDefault(k, List.of()).size();
                    return settings.allowRedelivery ? n < attempts : n != attempts;
                })
                .map(k -> k + "x" + all.getOrDefault(k, List.of()).size()).toList();
        checks.check("tx-aborted-in-log", wrongAborted.isEmpty(), "poison records' outputs in " + out
                + " (read_uncommitted) not " + attempts + " each: " + Scenario.first(wrongAborted));

        // Poison records: tried 1 + RETRIES times, then skipped with their offset committed.
        List<String> wrongPoison = poison.stream()
                .filter(k -> {
                    int tried = count(tracker.attempts, k);
                    int skipped = count(tracker.skips, k);
                    return settings.allowRedelivery ? tried < attempts || skipped < 1 : tried != attempts || skipped != 1;
                })
                .map(k -> k + " tried " + count(tracker.attempts, k) + " skipped " + count(tracker.skips, k))
                .toList();
        checks.check("tx-poison-skipped", wrongPoison.isEmpty(), "poison records: " + Scenario.first(wrongPoison));
        if (!settings.allowRedelivery) {
            List<String> retried = ok.stream().filter(k -> count(tracker.attempts, k) != 1)
                    .map(k -> k + "x" + count(tracker.attempts, k)).toList();
            checks.check("tx-ok-processed-once", retried.isEmpty(), "good records not processed once: " + Scenario.first(retried));
        }
        List<String> ghostsSeen = ghosts.stream().filter(tracker.attempts::containsKey).toList();
        checks.check("tx-aborted-input-not-delivered", ghostsSeen.isEmpty(),
                "records of aborted input transactions delivered: " + Scenario.first(ghostsSeen));
        checks.check("tx-concurrency", tracker.threads.size() == 3, "listener threads: " + new TreeSet<>(tracker.threads));
        return finish();
    }

    private static String valueOf(String key, String kind, int attempt) {
        return "processed-" + kind + "-" + key.substring(2) + "-attempt-" + attempt;
    }

    /** Sends `chunk` in one transaction; a failed transaction is aborted, so it is sent again. */
    private boolean sendInTransaction(String topic, List<String[]> chunk, long deadline) {
        for (int attempt = 1; ; attempt++) {
            try {
                template.executeInTransaction(t -> {
                    chunk.forEach(kv -> t.send(topic, kv[0], kv[1]));
                    return null;
                });
                return true;
            } catch (RuntimeException e) {
                inputRetries++;
                System.out.println("NOTE input transaction attempt " + attempt + " failed: " + e);
                if (attempt >= 5 || System.nanoTime() > deadline) {
                    return false;
                }
                Scenario.sleepNanos(TimeUnit.SECONDS.toNanos(1));
            }
        }
    }

    /** A transaction of GHOSTS records, flushed to the log and then aborted. */
    private void abortedSend(String topic, String keyPrefix, Set<String> ghosts) {
        try {
            template.executeInTransaction(t -> {
                for (int i = 0; i < GHOSTS; i++) {
                    ghosts.add(keyPrefix + i);
                    t.send(topic, keyPrefix + i, "ghost-" + i);
                }
                t.flush();
                throw new IllegalStateException("abort on purpose");
            });
        } catch (IllegalStateException expected) {
            // The template aborted the transaction.
        }
    }

    /**
     * Every record of `topic` with the given isolation level, key -> values, read from the
     * beginning until each of `keys` is there and the end offsets (the last stable offsets for
     * read_committed) taken after that are reached.
     */
    private Map<String, List<String>> read(String topic, String isolation, Set<String> keys, long deadline) {
        Properties p = new Properties();
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Map<String, List<String>> seen = new HashMap<>();
        try (Consumer<String, String> c = consumers.createConsumer(null, "verify-" + isolation, null, p)) {
            List<TopicPartition> parts = c.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                    .map(i -> new TopicPartition(topic, i.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = null;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    seen.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
                }
                if (end == null && seen.keySet().containsAll(keys)) {
                    end = c.endOffsets(parts);
                }
                if (end != null && reached(c, end)) {
                    break;
                }
            }
        }
        return seen;
    }

    private static boolean reached(Consumer<?, ?> c, Map<TopicPartition, Long> end) {
        return end.entrySet().stream().allMatch(e -> c.position(e.getKey()) >= e.getValue());
    }

    private int finish() {
        Map<String, Number> figures = new LinkedHashMap<>();
        figures.put("processed", tracker.attempts.size());
        figures.put("attempts", tracker.attempts.values().stream().mapToInt(AtomicInteger::get).sum());
        figures.put("skipped", tracker.skips.size());
        figures.put("input_retries", inputRetries);
        return checks.finish(figures);
    }
}
