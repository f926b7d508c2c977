// Security-matrix client (Kafka's Java client), run as a single source file on the class path
// of the interop jar: `java -cp kafka-java-client.jar JavaSecure.java key=value...`. Produces
// "count" records to "topic" over the listener the arguments describe, then reads them back in
// consumer group "group". Prints {"produced": n, "consumed": n} and exits 0, or
// {"stage": ..., "error": ...} and exits 1. Keys as in kafkajs_secure.js.
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaSecure {
    static String stage = "connect";

    static void finish(String json, int code) {
        System.out.println(json);
        System.out.flush();
        Runtime.getRuntime().halt(code);
    }

    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    public static void main(String[] args) {
        Map<String, String> cfg = new HashMap<>();
        for (String a : args) {
            int eq = a.indexOf('=');
            cfg.put(a.substring(0, eq), a.substring(eq + 1));
        }
        long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(cfg.get("timeout")) * 1000);
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(Math.max(0, deadline - System.currentTimeMillis()));
            } catch (InterruptedException e) {
                return;
            }
            finish("{\"stage\": " + quote(stage) + ", \"error\": \"timed out\"}", 1);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        Properties common = new Properties();
        common.put("bootstrap.servers", cfg.get("bootstrap"));
        common.put("security.protocol", cfg.get("protocol"));
        common.put("ssl.truststore.type", "PEM");
        common.put("ssl.truststore.location", cfg.get("ca"));
        if (cfg.containsKey("keystore")) {
            common.put("ssl.keystore.type", "PEM");
            common.put("ssl.keystore.location", cfg.get("keystore"));
        }
        if ("SASL_SSL".equals(cfg.get("protocol"))) {
            String module = cfg.get("mechanism").equals("PLAIN")
                    ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                    : "org.apache.kafka.common.security.scram.ScramLoginModule";
            common.put("sasl.mechanism", cfg.get("mechanism"));
            common.put("sasl.jaas.config", module + " required username=" + quote(cfg.get("username"))
                    + " password=" + quote(cfg.get("password")) + ";");
        }
        common.put("reconnect.backoff.max.ms", "1000");
        int count = Integer.parseInt(cfg.get("count"));
        String topic = cfg.get("topic");
        try {
            stage = "produce";
            Properties p = new Properties();
            p.putAll(common);
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            p.put("max.block.ms", "15000");
            p.put("delivery.timeout.ms", "15000");
            p.put("request.timeout.ms", "10000");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < count; i++) {
                    producer.send(new ProducerRecord<>(topic, cfg.get("prefix") + "-key-" + i,
                            cfg.get("prefix") + "-value-" + i)).get();
                }
            }
            stage = "consume";
            Properties c = new Properties();
            c.putAll(common);
            c.put("key.deserializer", StringDeserializer.class.getName());
            c.put("value.deserializer", StringDeserializer.class.getName());
            c.put("group.id", cfg.get("group"));
            c.put("auto.offset.reset", "earliest");
            Set<String> seen = new HashSet<>();
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                consumer.subscribe(List.of(topic));
                while (seen.size() < count) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                        seen.add(r.value());
                    }
                }
            }
            finish("{\"produced\": " + count + ", \"consumed\": " + seen.size() + "}", 0);
        } catch (Throwable e) {
            Throwable t = e;
            StringBuilder msg = new StringBuilder();
            while (t != null) {
                msg.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage()).append("; ");
                t = t.getCause();
            }
            finish("{\"stage\": " + quote(stage) + ", \"error\": " + quote(msg.toString()) + "}", 1);
        }
    }
}
