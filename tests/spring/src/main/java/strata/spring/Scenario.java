package strata.spring;

import static strata.spring.Checks.count;

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
    private final ScenarioSettings settings;
    private final int poisonEvery;
    private final int batchRecords;
    private final int paymentRecords;
    private final Checks checks = new Checks();

    Scenario(KafkaTemplate<String, String> template, KafkaListenerEndpointRegistry registry, Tracker tracker,
             ScenarioSettings settings, @Value("${scenario.poison-every}") int poisonEvery,
             @Value("${scenario.batch-records}") int batchRecords,
             @Value("${scenario.payment-records}") int paymentRecords) {
        this.template = template;
        this.registry = registry;
        this.tracker = tracker;
        this.settings = settings;
        this.poisonEvery = poisonEvery;
        this.batchRecords = batchRecords;
        this.paymentRecords = paymentRecords;
        tracker.ordersTopic = settings.prefix + "-orders";
    }

    /** Runs the scenario; the process exit status (0 when every check passed). */
    int run() {
        long deadline = settings.start();
        String orders = settings.prefix + "-orders";
        String payments = settings.prefix + "-payments";
        if (!checks.listenersAssigned(registry, deadline)) {
            return finish();
        }

        List<CompletableFuture<SendResult<String, String>>> sends = new ArrayList<>();
        Set<String> batchKeys = new TreeSet<>();
        for (int i = 0; i < batchRecords; i++) {
            String key = "b-" + i;
            batchKeys.add(key);
            sends.add(template.send(settings.prefix + "-batch", key, "batch-" + i));
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
        for (int i = 0; i < settings.records; i++) {
            String key = "o-" + i;
            boolean poison = poisonEvery > 0 && i % poisonEvery == poisonEvery / 2;
            (poison ? poisonOrders : goodOrders).add(key);
            sends.add(template.send(orders, key, (poison ? "poison-" : "order-") + i));
            if (i == settings.records / 2) {
                mark("orders-half-sent");
            }
            if (settings.sendSeconds > 0) {
                long due = started + (long) (settings.sendSeconds * 1e9 * (i + 1) / settings.records);
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
        checks.check("sends-acknowledged", acked == sends.size(),
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
        checks.check("orders-concurrency", tracker.orderThreads.size() == 3,
                "order listener threads: " + new TreeSet<>(tracker.orderThreads));
        // Poison orders: tried 1 + ORDER_RETRIES times, then in the dead-letter topic once.
        checkOnce("orders-dlt", tracker.deadLetters, poisonOrders);
        List<String> wrongAttempts = poisonOrders.stream()
                .filter(k -> {
                    int n = count(tracker.poisonAttempts, k);
                    return settings.allowRedelivery ? n < 1 + KafkaConfig.ORDER_RETRIES : n != 1 + KafkaConfig.ORDER_RETRIES;
                })
                .map(k -> k + "=" + count(tracker.poisonAttempts, k)).toList();
        checks.check("orders-dlt-attempts", wrongAttempts.isEmpty(),
                "poison records not tried " + (1 + KafkaConfig.ORDER_RETRIES) + " times: " + first(wrongAttempts));
        synchronized (tracker.deadLetterProblems) {
            checks.check("orders-dlt-headers", tracker.deadLetterProblems.isEmpty(), "DLT headers: " + first(tracker.deadLetterProblems));
        }
        Set<String> strayDeadLetters = new TreeSet<>(tracker.deadLetters.keySet());
        strayDeadLetters.removeAll(poisonOrders);
        Set<String> strayOrders = new TreeSet<>(tracker.orders.keySet());
        strayOrders.removeAll(goodOrders);
        checks.check("orders-no-strays", strayDeadLetters.isEmpty() && strayOrders.isEmpty(),
                "unexpected: in DLT " + first(strayDeadLetters) + ", processed " + first(strayOrders));

        // Batch listener: every record, in batches of more than one.
        checkOnce("batch", tracker.batched, batchKeys);
        checks.check("batch-size", tracker.largestBatch.get() > 1,
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
                            || (!settings.allowRedelivery && seen.size() != 1);
                })
                .map(k -> k + "=" + Tracker.copy(tracker.paymentDeadLetters.get(k))).toList();
        Set<String> strayPaymentDlt = new TreeSet<>(tracker.paymentDeadLetters.keySet());
        strayPaymentDlt.removeAll(doomedPayments);
        checks.check("payments-dlt", wrongDlt.isEmpty() && strayPaymentDlt.isEmpty(),
                "doomed payments not in " + payments + "-dlt once: " + first(wrongDlt) + "; others there: "
                        + first(strayPaymentDlt));
        return finish();
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
        boolean ok = missing.isEmpty() && (settings.allowRedelivery || twice.isEmpty());
        checks.check(name, ok, expected.size() + " expected, " + missing.size() + " missing " + first(missing) + ", "
                + twice.size() + " more than once " + first(twice));
        if (settings.allowRedelivery && !twice.isEmpty()) {
            System.out.println("NOTE " + name + ": " + twice.size() + " records delivered more than once after the "
                    + "restart (at-least-once): " + first(twice));
        }
    }

    private void checkAttempts(String name, Set<String> keys, List<String> topics) {
        List<String> wrong = keys.stream()
                .filter(k -> {
                    List<String> seen = Tracker.copy(tracker.paymentAttempts.get(k));
                    return settings.allowRedelivery ? !new HashSet<>(seen).equals(new HashSet<>(topics)) : !seen.equals(topics);
                })
                .map(k -> k + "=" + Tracker.copy(tracker.paymentAttempts.get(k))).toList();
        checks.check(name + "-topics", wrong.isEmpty(), keys.size() + " records, attempts expected on " + topics
                + "; differing: " + first(wrong));
    }

    private int finish() {
        Map<String, Number> figures = new LinkedHashMap<>();
        figures.put("orders", tracker.orders.size());
        figures.put("orders_dlt", tracker.deadLetters.size());
        figures.put("batched", tracker.batched.size());
        figures.put("batches", tracker.batches.get());
        figures.put("payments_done", tracker.paymentsDone.size());
        figures.put("payments_dlt", tracker.paymentDeadLetters.size());
        figures.put("redelivered", redelivered());
        return checks.finish(figures);
    }

    private int redelivered() {
        return (int) (tracker.orders.values().stream().filter(n -> n.get() > 1).count()
                + tracker.batched.values().stream().filter(n -> n.get() > 1).count());
    }

    static void mark(String what) {
        System.out.println("MARK " + what);
        System.out.flush();
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
