package strata.spring;

import java.util.concurrent.TimeUnit;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/** The {@code scenario.*} settings both scenarios read (see {@link ScenarioApp}). */
@Component
class ScenarioSettings {
    /** The prefix of every topic, group and listener id. */
    final String prefix;
    /** Records the scenario sends. */
    final int records;
    /** How long the sends are spread over (0: as fast as they go). */
    final double sendSeconds;
    /** How long the scenario may take. */
    final long timeoutNanos;
    /** Whether records may be delivered more than once (at-least-once after a restart). */
    final boolean allowRedelivery;

    ScenarioSettings(@Value("${scenario.prefix}") String prefix, @Value("${scenario.records}") int records,
                     @Value("${scenario.send-seconds}") double sendSeconds,
                     @Value("${scenario.timeout-seconds}") long timeoutSeconds,
                     @Value("${scenario.allow-redelivery}") boolean allowRedelivery) {
        this.prefix = prefix;
        this.records = records;
        this.sendSeconds = sendSeconds;
        this.timeoutNanos = TimeUnit.SECONDS.toNanos(timeoutSeconds);
        this.allowRedelivery = allowRedelivery;
    }

    /** Starts the watchdog (the timeout and 30 s for the shutdown); the scenario's deadline. */
    long start() {
        long deadline = System.nanoTime() + timeoutNanos;
        Scenario.watchdog(timeoutNanos + TimeUnit.SECONDS.toNanos(30));
        return deadline;
    }
}
