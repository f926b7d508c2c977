import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.RaftVoterEndpoint;
import org.apache.kafka.common.Uuid;

/**
 * Kafka's Java Admin (kafka-clients 4.4.0) on the KIP-853 calls, for test_kafka_quorum.py.
 * Run as a single-file source program with Kafka's jars on the class path:
 *
 *   java -cp 'libs/*' QuorumAdmin.java BOOTSTRAP describe
 *   java -cp 'libs/*' QuorumAdmin.java BOOTSTRAP features
 *   java -cp 'libs/*' QuorumAdmin.java BOOTSTRAP add ID DIRECTORY_ID LISTENER HOST PORT
 *   java -cp 'libs/*' QuorumAdmin.java BOOTSTRAP remove ID DIRECTORY_ID
 *
 * Prints one JSON object on standard output: the described quorum or features, or
 * {"error": null} when a change succeeded and {"error": "<exception class>"} when the
 * broker refused it (directory ids in Kafka's base64 form). Exit status 2 on bad usage.
 */
public class QuorumAdmin {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: QuorumAdmin BOOTSTRAP describe|features|add|remove ...");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "25000");
        Object result;
        try (Admin admin = Admin.create(props)) {
            switch (args[1]) {
                case "describe" -> result = describe(
                        admin.describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS));
                case "features" -> result = features(
                        admin.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS));
                case "add" -> result = outcome(() -> admin.addRaftVoter(
                        Integer.parseInt(args[2]), Uuid.fromString(args[3]),
                        Set.of(new RaftVoterEndpoint(args[4], args[5], Integer.parseInt(args[6]))))
                        .all().get(40, TimeUnit.SECONDS));
                case "remove" -> result = outcome(() -> admin.removeRaftVoter(
                        Integer.parseInt(args[2]), Uuid.fromString(args[3]))
                        .all().get(40, TimeUnit.SECONDS));
                default -> {
                    System.err.println("unknown command " + args[1]);
                    System.exit(2);
                    return;
                }
            }
        }
        System.out.println(new ObjectMapper().writeValueAsString(result));
    }

    interface Call {
        void run() throws Exception;
    }

    static Map<String, Object> outcome(Call call) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        try {
            call.run();
            out.put("error", null);
        } catch (ExecutionException e) {
            out.put("error", e.getCause().getClass().getSimpleName());
            out.put("message", e.getCause().getMessage());
        }
        return out;
    }

    static Map<String, Object> describe(QuorumInfo q) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("leaderId", q.leaderId());
        out.put("leaderEpoch", q.leaderEpoch());
        out.put("highWatermark", q.highWatermark());
        out.put("voters", replicas(q.voters()));
        out.put("observers", replicas(q.observers()));
        Map<String, Object> nodes = new LinkedHashMap<>();
        q.nodes().forEach((id, node) -> {
            List<String> endpoints = new ArrayList<>();
            for (RaftVoterEndpoint e : node.endpoints()) {
                endpoints.add(e.listener() + "://" + e.host() + ":" + e.port());
            }
            nodes.put(String.valueOf(id), endpoints);
        });
        out.put("nodes", nodes);
        return out;
    }

    static List<Object> replicas(List<QuorumInfo.ReplicaState> replicas) {
        List<Object> out = new ArrayList<>();
        for (QuorumInfo.ReplicaState r : replicas) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", r.replicaId());
            m.put("directoryId", r.replicaDirectoryId().toString());
            m.put("logEndOffset", r.logEndOffset());
            out.add(m);
        }
        return out;
    }

    static Map<String, Object> features(FeatureMetadata f) {
        Map<String, Object> out = new LinkedHashMap<>();
        Map<String, Object> finalized = new LinkedHashMap<>();
        f.finalizedFeatures().forEach((name, range) -> finalized.put(name, range.maxVersionLevel()));
        Map<String, Object> supported = new LinkedHashMap<>();
        f.supportedFeatures().forEach((name, range) ->
                supported.put(name, List.of(range.minVersion(), range.maxVersion())));
        out.put("finalized", finalized);
        out.put("supported", supported);
        return out;
    }
}
