package strata.spring;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.stereotype.Component;

/** What the listeners saw, shared between listener threads and the scenario. */
@Component
public class Tracker {
    final Map<String, AtomicInteger> orders = new ConcurrentHashMap<>();
    final Set<String> orderThreads = ConcurrentHashMap.newKeySet();
    final Map<String, AtomicInteger> poisonAttempts = new ConcurrentHashMap<>();
    final Map<String, AtomicInteger> deadLetters = new ConcurrentHashMap<>();
    final List<String> deadLetterProblems = new ArrayList<>();
    final Map<String, AtomicInteger> batched = new ConcurrentHashMap<>();
    final AtomicInteger largestBatch = new AtomicInteger();
    final AtomicInteger batches = new AtomicInteger();
    final Map<String, List<String>> paymentAttempts = new ConcurrentHashMap<>();
    final Map<String, AtomicInteger> paymentsDone = new ConcurrentHashMap<>();
    final Map<String, List<String>> paymentDeadLetters = new ConcurrentHashMap<>();
    volatile String ordersTopic = "";

    private static void bump(Map<String, AtomicInteger> counts, String key) {
        counts.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
    }

    void orderThread(String name) {
        orderThreads.add(name);
    }

    void order(String key) {
        bump(orders, key);
    }

    void poisonAttempt(String key) {
        bump(poisonAttempts, key);
    }

    void deadLetter(String key, String originalTopic, String originalPartition, int partition, String message) {
        bump(deadLetters, key);
        String problem = null;
        if (!ordersTopic.equals(originalTopic)) {
            problem = "original topic header " + originalTopic;
        } else if (!String.valueOf(partition).equals(originalPartition)) {
            problem = "original partition header " + originalPartition + " on DLT partition " + partition;
        } else if (message == null || !message.contains("poison record " + key)) {
            problem = "exception message header " + message;
        }
        if (problem != null) {
            synchronized (deadLetterProblems) {
                deadLetterProblems.add(key + ": " + problem);
            }
        }
    }

    void batch(List<String> keys) {
        batches.incrementAndGet();
        largestBatch.accumulateAndGet(keys.size(), Math::max);
        keys.forEach(k -> bump(batched, k));
    }

    void paymentAttempt(String key, String topic) {
        List<String> topics = paymentAttempts.computeIfAbsent(key, k -> new ArrayList<>());
        synchronized (topics) {
            topics.add(topic);
        }
    }

    void paymentDone(String key) {
        bump(paymentsDone, key);
    }

    void paymentDeadLetter(String key, String topic) {
        List<String> topics = paymentDeadLetters.computeIfAbsent(key, k -> new ArrayList<>());
        synchronized (topics) {
            topics.add(topic);
        }
    }

    static List<String> copy(List<String> list) {
        if (list == null) {
            return List.of();
        }
        synchronized (list) {
            return new ArrayList<>(list);
        }
    }
}
