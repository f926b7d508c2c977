package strata.spring;

import java.util.concurrent.TimeUnit;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * A spring-kafka application that runs one scenario against the brokers in
 * {@code --spring.kafka.bootstrap-servers} and exits 0 only when every check passed.
 *
 * <p>What it exercises (topics {@code <scenario.prefix>-...}):
 * <ul>
 *   <li>{@code KafkaTemplate} sends (acks=all) to three topics, each send acknowledged;</li>
 *   <li>{@code orders}: a {@code @KafkaListener} with concurrency 3 (three consumers of one group
 *       sharing six partitions); every record processed once, by three consumer threads;</li>
 *   <li>poison orders: the listener throws, {@code DefaultErrorHandler} retries twice, then
 *       {@code DeadLetterPublishingRecoverer} publishes them to {@code orders-dlt}, where a
 *       listener checks the original-topic and exception headers;</li>
 *   <li>{@code batch}: a batch listener receives every record, in batches of more than one;</li>
 *   <li>{@code payments}: {@code @RetryableTopic} with back-off topics {@code payments-retry-0}
 *       and {@code payments-retry-1} and {@code payments-dlt}: flaky records succeed on the
 *       first retry topic, doomed ones pass through both and end in the {@code @DltHandler}.</li>
 * </ul>
 * It prints {@code MARK orders-half-sent} when half the orders are sent (a test may restart a
 * node then), one {@code CHECK <name> ok|FAIL ...} line per check and a {@code RESULT} line.
 *
 * <p>With the {@code transactions} profile ({@code --spring.profiles.active=transactions}) it runs
 * {@link TxnScenario} instead: a listener in Kafka transactions (KafkaTransactionManager from
 * {@code spring.kafka.producer.transaction-id-prefix}, {@code @Transactional}) that consumes
 * {@code tx-in} and sends to {@code tx-out}; rolled-back attempts must stay invisible to
 * read_committed readers and every good record's output must be there exactly once. It
 * prints {@code MARK tx-half-sent} half way.
 *
 * <p>Settings: {@code scenario.prefix} (required), {@code scenario.replication},
 * {@code scenario.records}, {@code scenario.poison-every}, {@code scenario.batch-records},
 * {@code scenario.payment-records}, {@code scenario.send-seconds} (spread the orders over this
 * long), {@code scenario.timeout-seconds}, {@code scenario.allow-redelivery} (true where a broker
 * restart may make the group redeliver records whose commit was lost: Kafka's at-least-once;
 * every record must still arrive).
 */
@SpringBootApplication
public class ScenarioApp {
    public static void main(String[] args) {
        ConfigurableApplicationContext context = SpringApplication.run(ScenarioApp.class, args);
        int code = context.getBeanNamesForType(TxnScenario.class).length > 0
                ? context.getBean(TxnScenario.class).run() : context.getBean(Scenario.class).run();
        Thread closer = new Thread(context::close, "close");
        closer.setDaemon(true);
        closer.start();
        try {
            closer.join(TimeUnit.SECONDS.toMillis(20));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        System.out.flush();
        Runtime.getRuntime().halt(code);
    }
}
