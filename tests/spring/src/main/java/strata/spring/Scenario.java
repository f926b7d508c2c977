package strata.spring;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Profile;
import org.springframework.kafka.config.KafkaListenerEndpointRegistry;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.ConcurrentMessageListenerContainer;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.support.SendResult;
import org.springframework.stereotype.Component;

/** Sends the scenario's records, waits for the listeners, and checks what they saw. */
@Component
@Profile("!transactions")
public class Scenario {
    private final KafkaTemplate<String, String> template;
    private final KafkaListenerEndpointRegistry registry;
    private final Tracker tracker;
    private final String prefix;
    private final int records;
    private final int poisonEvery;
    private final int batchRecords;
    private final int paymentRecords;
    private final double sendSeconds;
    private final long timeoutNanos;
    private final boolean allowRedelivery;
    private final Map<String, String> failures = new LinkedHashMap<>();
    private int checks;

    Scenario(KafkaTemplate<String, String> template, KafkaListenerEndpointRegistry registry, Tracker tracker,
             @Value("${scenario.prefix}") String prefix, @Value("${scenario.records}") int records,
             @Value("${scenario.poison-every}") int poisonEvery, @Value("${scenario.batch-records}") int batchRecords,
             @Value("${scenario.payment-records}") int paymentRecords,
             @Value("${scenario.send-seconds}") double sendSeconds,
             @Value("${scenario.timeout-seconds}") long timeoutSeconds,
             @Value("${scenario.allow-redelivery}") boolean allowRedelivery) {
        this.template = template;
        this.registry = registry;
        this.tracker = tracker;
        this.prefix = prefix;
        this.records = records;
        this.poisonEvery = poisonEvery;
        this.batchRecords = batchRecords;
        this.paymentRecords = paymentRecords;
        this.sendSeconds = sendSeconds;
        this.timeoutNanos = TimeUnit.SECONDS.toNanos(timeoutSeconds);
        this.allowRedelivery = allowRedelivery;
        tracker.ordersTopic = prefix + "-orders";
    }

    /** Runs the scenario; the process exit status (0 when every check passed). */
    int run() {
        long deadline = System.nanoTime() + timeoutNanos;
        watchdog(timeoutNanos + TimeUnit.SECONDS.toNanos(30));
        String orders = prefix + "-orders";
        String payments = prefix + "-payments";

        if (!waitFor(deadline, this::everyConsumerAssigned)) {
            check("assigned", false, "listener containers without partitions: " + unassigned(registry));
            return finish();
        }
        mark("listeners-assigned");

        List<CompletableFuture<SendResult<String, String>>> sends = new ArrayList<>();
        Set<String> batchKeys = new TreeSet<>();
        for (int i = 0; i < batchRecords; i++) {
            String key = "b-" + i;
            batchKeys.add(key);
            sends.add(template.send(prefix + "-batch", key, "batch-" + i));
        }
        Set<String> okPayments = new TreeSet<>();
        Set<String> flakyPayments = new TreeSet<>();
        Set<String> doomedPayments = new TreeSet<>();
        for (int i = 0; i < paymentRecords; i++) {
            String key = "p-" + i;
            String kind = switch (i % 4) {
                case 0 -> "doomed";
                case 1 -> "flaky";
                default -> "ok";
            };
            (kind.equals("doomed") ? doomedPayments : kind.equals("flaky") ? flakyPayments : okPayments).add(key);
            sends.add(template.send(payments, key, kind + "-" + i));
        }
        Set<String> goodOrders = new TreeSet<>();
        Set<String> poisonOrders = new TreeSet<>();
        long started = System.nanoTime();
        for (int i = 0; i < records; i++) {
            String key = "o-" + i;
            boolean poison = poisonEvery > 0 && i % poisonEvery == poisonEvery / 2;
            (poison ? poisonOrders : goodOrders).add(key);
            sends.add(template.send(orders, key, (poison ? "poison-" : "order-") + i));
            if (i == records / 2) {
                mark("orders-half-sent");
            }
            if (sendSeconds > 0) {
                long due = started + (long) (sendSeconds * 1e9 * (i + 1) / records);
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    sleepNanos(wait);
                }
            }
        }
        mark("all-sent");

        int acked = 0;
        String firstSendError = null;
        for (CompletableFuture<SendResult<String, String>> f : sends) {
            try {
                f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                acked++;
            } catch (Exception e) {
                if (firstSendError == null) {
                    firstSendError = String.valueOf(e.getCause() != null ? e.getCause() : e);
                }
            }
        }
        check("sends-acknowledged", acked == sends.size(),
                acked + " of " + sends.size() + " sends acknowledged; first error: " + firstSendError);

        waitFor(deadline, () -> tracker.orders.keySet().containsAll(goodOrders)
                && tracker.deadLetters.keySet().containsAll(poisonOrders)
                && tracker.batched.keySet().containsAll(batchKeys)
                && tracker.paymentsDone.keySet().containsAll(okPayments)
                && tracker.paymentsDone.keySet().containsAll(flakyPayments)
                && tracker.paymentDeadLetters.keySet().containsAll(doomedPayments));
        // Anything that arrives late (a duplicate, a stray record) arrives within this.
        sleepNanos(TimeUnit.MILLISECONDS.toNanos(1500));

        // Orders: every good one processed, once (or at least once where redelivery is allowed).
        checkOnce("orders", tracker.orders, goodOrders);
        check("orders-concurrency", tracker.orderThreads.size() == 3,
                "order listener threads: " + new TreeSet<>(tracker.orderThreads));
        // Poison orders: tried 1 + ORDER_RETRIES times, then in the dead-letter topic once.
        checkOnce("orders-dlt", tracker.deadLetters, poisonOrders);
        List<String> wrongAttempts = poisonOrders.stream()
                .filter(k -> {
                    int n = count(tracker.poisonAttempts, k);
                    return allowRedelivery ? n < 1 + KafkaConfig.ORDER_RETRIES : n != 1 + KafkaConfig.ORDER_RETRIES;
                })
                .map(k -> k + "=" + count(tracker.poisonAttempts, k)).toList();
        check("orders-dlt-attempts", wrongAttempts.isEmpty(),
                "poison records not tried " + (1 + KafkaConfig.ORDER_RETRIES) + " times: " + first(wrongAttempts));
        synchronized (tracker.deadLetterProblems) {
            check("orders-dlt-headers", tracker.deadLetterProblems.isEmpty(), "DLT headers: " + first(tracker.deadLetterProblems));
        }
        Set<String> strayDeadLetters = new TreeSet<>(tracker.deadLetters.keySet());
        strayDeadLetters.removeAll(poisonOrders);
        Set<String> strayOrders = new TreeSet<>(tracker.orders.keySet());
        strayOrders.removeAll(goodOrders);
        check("orders-no-strays", strayDeadLetters.isEmpty() && strayOrders.isEmpty(),
                "unexpected: in DLT " + first(strayDeadLetters) + ", processed " + first(strayOrders));

        // Batch listener: every record, in batches of more than one.
        checkOnce("batch", tracker.batched, batchKeys);
        check("batch-size", tracker.largestBatch.get() > 1,
                tracker.batches.get() + " batches, the largest of " + tracker.largestBatch.get());

        // Non-blocking retries through the back-off topics.
        List<String> retry = List.of(payments, payments + "-retry-0", payments + "-retry-1");
        checkOnce("payments", tracker.paymentsDone, union(okPayments, flakyPayments));
        checkAttempts("payments-ok", okPayments, List.of(payments));
        checkAttempts("payments-flaky", flakyPayments, retry.subList(0, 2));
        checkAttempts("payments-doomed", doomedPayments, retry);
        List<String> wrongDlt = doomedPayments.stream()
                .filter(k -> {
                    List<String> seen = Tracker.copy(tracker.paymentDeadLetters.get(k));
                    return seen.isEmpty() || !seen.stream().allMatch((payments + "-dlt")::equals)
                            || (!allowRedelivery && seen.size() != 1);
                })
                .map(k -> k + "=" + Tracker.copy(tracker.paymentDeadLetters.get(k))).toList();
        Set<String> strayPaymentDlt = new TreeSet<>(tracker.paymentDeadLetters.keySet());
        strayPaymentDlt.removeAll(doomedPayments);
        check("payments-dlt", wrongDlt.isEmpty() && strayPaymentDlt.isEmpty(),
                "doomed payments not in " + payments + "-dlt once: " + first(wrongDlt) + "; others there: "
                        + first(strayPaymentDlt));
        return finish();
    }

    private boolean everyConsumerAssigned() {
        return unassigned(registry).isEmpty();
    }

    /** Listener consumers (each concurrent child) that hold no partition yet. */
    static List<String> unassigned(KafkaListenerEndpointRegistry registry) {
        List<String> missing = new ArrayList<>();
        for (MessageListenerContainer c : registry.getAllListenerContainers()) {
            List<? extends MessageListenerContainer> children = c instanceof ConcurrentMessageListenerContainer<?, ?> cc
                    ? cc.getContainers() : List.of(c);
            if (children.isEmpty()) {
                missing.add(c.getListenerId() + " (not started)");
            }
            for (MessageListenerContainer child : children) {
                if (child.getAssignedPartitions() == null || child.getAssignedPartitions().isEmpty()) {
                    missing.add(child.getListenerId());
                }
            }
        }
        return missing;
    }

    private void checkOnce(String name, Map<String, AtomicInteger> seen, Set<String> expected) {
        List<String> missing = expected.stream().filter(k -> count(seen, k) == 0).toList();
        List<String> twice = expected.stream().filter(k -> count(seen, k) > 1).map(k -> k + "x" + count(seen, k)).toList();
        boolean ok = missing.isEmpty() && (allowRedelivery || twice.isEmpty());
        check(name, ok, expected.size() + " expected, " + missing.size() + " missing " + first(missing) + ", "
                + twice.size() + " more than once " + first(twice));
        if (allowRedelivery && !twice.isEmpty()) {
            System.out.println("NOTE " + name + ": " + twice.size() + " records delivered more than once after the "
                    + "restart (at-least-once): " + first(twice));
        }
    }

    private void checkAttempts(String name, Set<String> keys, List<String> topics) {
        List<String> wrong = keys.stream()
                .filter(k -> {
                    List<String> seen = Tracker.copy(tracker.paymentAttempts.get(k));
                    return allowRedelivery ? !new HashSet<>(seen).equals(new HashSet<>(topics)) : !seen.equals(topics);
                })
                .map(k -> k + "=" + Tracker.copy(tracker.paymentAttempts.get(k))).toList();
        check(name + "-topics", wrong.isEmpty(), keys.size() + " records, attempts expected on " + topics
                + "; differing: " + first(wrong));
    }

    private void check(String name, boolean ok, String detail) {
        checks++;
        if (ok) {
            System.out.println("CHECK " + name + " ok");
        } else {
            failures.put(name, detail);
            System.out.println("CHECK " + name + " FAIL " + detail);
        }
        System.out.flush();
    }

    private int finish() {
        System.out.println("RESULT {\"checks\": " + checks + ", \"failed\": " + failures.size() + ", \"orders\": "
                + tracker.orders.size() + ", \"orders_dlt\": " + tracker.deadLetters.size() + ", \"batched\": "
                + tracker.batched.size() + ", \"batches\": " + tracker.batches.get() + ", \"payments_done\": "
                + tracker.paymentsDone.size() + ", \"payments_dlt\": " + tracker.paymentDeadLetters.size()
                + ", \"redelivered\": " + redelivered() + "}");
        System.out.flush();
        return failures.isEmpty() ? 0 : 1;
    }

    private int redelivered() {
        return (int) (tracker.orders.values().stream().filter(n -> n.get() > 1).count()
                + tracker.batched.values().stream().filter(n -> n.get() > 1).count());
    }

    static void mark(String what) {
        System.out.println("MARK " + what);
        System.out.flush();
    }

    private static int count(Map<String, AtomicInteger> counts, String key) {
        AtomicInteger n = counts.get(key);
        return n == null ? 0 : n.get();
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> u = new TreeSet<>(a);
        u.addAll(b);
        return u;
    }

    static String first(java.util.Collection<String> items) {
        return items.stream().limit(5).collect(Collectors.joining(", ", "[", items.size() > 5 ? ", ...]" : "]"));
    }

    static boolean waitFor(long deadline, BooleanSupplier condition) {
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            sleepNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
        return true;
    }

    static void sleepNanos(long nanos) {
        try {
            TimeUnit.NANOSECONDS.sleep(nanos);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Ends the process with status 1 if the scenario and the shutdown outlast `nanos`. */
    static void watchdog(long nanos) {
        Thread t = new Thread(() -> {
            sleepNanos(nanos);
            System.out.println("CHECK finished-in-time FAIL the scenario did not end within "
                    + TimeUnit.NANOSECONDS.toSeconds(nanos) + "s");
            System.out.flush();
            Runtime.getRuntime().halt(1);
        }, "watchdog");
        t.setDaemon(true);
        t.start();
    }
}
