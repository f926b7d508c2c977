package strata.spring;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import org.springframework.kafka.config.KafkaListenerEndpointRegistry;

/**
 * A scenario's checks: each printed as {@code CHECK <name> ok} or {@code CHECK <name> FAIL
 * <detail>}, then one {@code RESULT} line of JSON figures.
 */
final class Checks {
    private final Map<String, String> failures = new LinkedHashMap<>();
    private int checks;

    /** Counts check `name`: passed when `ok`, else failed with `detail`. */
    void check(String name, boolean ok, String detail) {
        checks++;
        if (ok) {
            System.out.println("CHECK " + name + " ok");
        } else {
            failures.put(name, detail);
            System.out.println("CHECK " + name + " FAIL " + detail);
        }
        System.out.flush();
    }

    /**
     * Waits until every listener consumer holds a partition and marks {@code listeners-assigned};
     * when `deadline` passes first, fails the check {@code assigned} and returns false.
     */
    boolean listenersAssigned(KafkaListenerEndpointRegistry registry, long deadline) {
        if (!Scenario.waitFor(deadline, () -> Scenario.unassigned(registry).isEmpty())) {
            check("assigned", false, "listener containers without partitions: " + Scenario.unassigned(registry));
            return false;
        }
        Scenario.mark("listeners-assigned");
        return true;
    }

    /**
     * Prints the RESULT line: the checks, the failed ones, then `figures` in their order; the
     * process exit status (0 when every check passed).
     */
    int finish(Map<String, Number> figures) {
        StringBuilder line = new StringBuilder("RESULT {\"checks\": " + checks + ", \"failed\": " + failures.size());
        figures.forEach((name, value) -> line.append(", \"").append(name).append("\": ").append(value));
        System.out.println(line.append("}"));
        System.out.flush();
        return failures.isEmpty() ? 0 : 1;
    }

    /** The count of `key` in `counts` (0 when absent). */
    static int count(Map<String, AtomicInteger> counts, String key) {
        AtomicInteger n = counts.get(key);
        return n == null ? 0 : n.get();
    }
}
