package strata.spring;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.context.annotation.Profile;
import org.springframework.stereotype.Component;

/** What the transactional listener did, per key, shared between listener threads and the scenario. */
@Component
@Profile("transactions")
public class TxnTracker {
    final Map<String, AtomicInteger> attempts = new ConcurrentHashMap<>();
    final Map<String, AtomicInteger> skips = new ConcurrentHashMap<>();
    final Set<String> threads = ConcurrentHashMap.newKeySet();

    int attempt(String key) {
        threads.add(Thread.currentThread().getName());
        return attempts.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
    }

    void skipped(String key) {
        skips.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
    }
}
