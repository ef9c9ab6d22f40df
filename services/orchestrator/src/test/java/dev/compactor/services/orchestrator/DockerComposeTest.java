package dev.compactor.services.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.compactor.runtime.ConfigKey;
import dev.compactor.runtime.StageConfig;
import dev.compactor.schemas.Topics;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * docker-compose.yml cannot drift from the code: it names every service, wires each to Kafka, the
 * registry and S3, and sets only COMPACTOR_* variables the code reads, with values the code
 * accepts. (No Docker engine runs here, so the file is checked as data.)
 */
class DockerComposeTest {

  static final Path ROOT = Path.of("../..");
  static final List<String> INFRA = List.of("kafka", "schema-registry", "minio", "minio-init");

  /** Compose service → the stage it runs (events' vocabulary). */
  static final Map<String, String> STAGE_SERVICES =
      Map.of(
          "ingestion", "ingestion",
          "pruning", "prune",
          "quantization", "quantize",
          "distillation", "distill",
          "factorization", "factorize",
          "evaluation", "evaluate",
          "publishing", "publish");

  static final Set<String> GPU_SERVICES =
      Set.of("pruning", "quantization", "distillation", "evaluation");
  static final Pattern DEFAULTED = Pattern.compile("\\$\\{[A-Z0-9_]+:-([^}]*)}");

  static JsonNode services;

  @BeforeAll
  static void readCompose() throws IOException {
    services =
        new YAMLMapper().readTree(ROOT.resolve("docker-compose.yml").toFile()).get("services");
  }

  /** A service's environment with {@code ${VAR:-default}} resolved to its default. */
  static Map<String, String> env(String service) {
    Map<String, String> env = new LinkedHashMap<>();
    services
        .get(service)
        .get("environment")
        .fields()
        .forEachRemaining(
            e -> {
              Matcher m = DEFAULTED.matcher(e.getValue().asText());
              env.put(e.getKey(), m.matches() ? m.group(1) : e.getValue().asText());
            });
    return env;
  }

  @Test
  void namesEveryService() {
    Set<String> expected = new TreeSet<>(INFRA);
    expected.add("orchestrator");
    expected.addAll(STAGE_SERVICES.keySet());
    Set<String> actual = new TreeSet<>();
    services.fieldNames().forEachRemaining(actual::add);
    assertEquals(expected, actual);
    Set<String> servedStages = new TreeSet<>(JobTopology.SERVED_STAGES);
    assertEquals(
        servedStages,
        new TreeSet<>(STAGE_SERVICES.values()),
        "every stage the orchestrator routes to has exactly one service");
    for (Map.Entry<String, String> e : STAGE_SERVICES.entrySet()) {
      assertEquals(e.getValue(), env(e.getKey()).get("COMPACTOR_STAGE"), e.getKey());
      assertTrue(Topics.STAGES.contains(e.getValue()));
    }
  }

  @Test
  void infrastructureIsKraftKafkaConfluentRegistryAndMinio() {
    assertTrue(services.get("kafka").get("image").asText().startsWith("apache/kafka:4."));
    Map<String, String> kafka = env("kafka");
    assertEquals("broker,controller", kafka.get("KAFKA_PROCESS_ROLES"), "KRaft, no ZooKeeper");
    assertTrue(kafka.get("KAFKA_ADVERTISED_LISTENERS").contains("://kafka:9092"));
    assertEquals(
        "1", kafka.get("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"), "EOS on one node");
    assertTrue(
        services
            .get("schema-registry")
            .get("image")
            .asText()
            .startsWith("confluentinc/cp-schema-registry:"));
    assertEquals(
        "PLAINTEXT://kafka:9092",
        env("schema-registry").get("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"));
    assertTrue(services.get("minio").get("image").asText().startsWith("minio/minio:"));
    assertTrue(services.get("minio-init").get("image").asText().startsWith("minio/mc:"));
  }

  @Test
  void everyAppServiceIsBuiltFromTheRootDockerfileWithItsModule() throws IOException {
    String dockerfile = Files.readString(ROOT.resolve("Dockerfile"));
    assertTrue(dockerfile.contains("ARG SERVICE") && dockerfile.contains("ARG MAIN_CLASS"));
    for (String service : appServices()) {
      JsonNode build = services.get(service).get("build");
      assertEquals(".", build.get("context").asText(), service);
      assertEquals("Dockerfile", build.get("dockerfile").asText(), service);
      String module = build.get("args").get("SERVICE").asText();
      assertTrue(
          Files.exists(ROOT.resolve("services").resolve(module).resolve("pom.xml")),
          service + ": build arg SERVICE=" + module + " is not a module under services/");
      String pom = Files.readString(ROOT.resolve("services").resolve(module).resolve("pom.xml"));
      assertTrue(
          pom.contains("<artifactId>compactor-" + module + "</artifactId>"),
          service
              + ": the Dockerfile copies compactor-"
              + module
              + "-*.jar; the module is named otherwise");
      String main = build.get("args").get("MAIN_CLASS").asText();
      assertTrue(
          main.startsWith("dev.compactor.services." + module + "."),
          service + ": MAIN_CLASS " + main + " is not in the module's package");
    }
  }

  @Test
  void orchestratorMainClassExists() throws Exception {
    String main = services.get("orchestrator").get("build").get("args").get("MAIN_CLASS").asText();
    assertEquals(OrchestratorService.class.getName(), main);
    Class.forName(main).getMethod("main", String[].class);
  }

  @Test
  void stageServiceMainClassesExistOnceTheirModulesHaveCode() throws IOException {
    for (String service : STAGE_SERVICES.keySet()) {
      JsonNode args = services.get(service).get("build").get("args");
      Path src =
          ROOT.resolve("services").resolve(args.get("SERVICE").asText()).resolve("src/main/java");
      if (!Files.isDirectory(src)) {
        continue; // the module has no code yet; the main-class check starts when it does
      }
      Path mainSource = src.resolve(args.get("MAIN_CLASS").asText().replace('.', '/') + ".java");
      assertTrue(
          Files.exists(mainSource),
          service
              + ": docker-compose names MAIN_CLASS "
              + args.get("MAIN_CLASS").asText()
              + " but there is no "
              + mainSource);
    }
  }

  @Test
  void everyAppServiceReachesKafkaAndTheRegistryByServiceName() {
    for (String service : appServices()) {
      Map<String, String> env = env(service);
      assertEquals("kafka:9092", env.get("COMPACTOR_KAFKA_BOOTSTRAP"), service);
      assertEquals(
          "http://schema-registry:8081", env.get("COMPACTOR_SCHEMA_REGISTRY_URL"), service);
    }
  }

  @Test
  void stageServicesGetTheMinioCredentialsAndTheBucketTheInitCreates() {
    Map<String, String> minio = env("minio");
    String init = String.join(" ", texts(services.get("minio-init").get("entrypoint")));
    for (String service : STAGE_SERVICES.keySet()) {
      Map<String, String> env = env(service);
      assertEquals("http://minio:9000", env.get("COMPACTOR_S3_ENDPOINT"), service);
      assertEquals(minio.get("MINIO_ROOT_USER"), env.get("COMPACTOR_S3_ACCESS_KEY"), service);
      assertEquals(minio.get("MINIO_ROOT_PASSWORD"), env.get("COMPACTOR_S3_SECRET_KEY"), service);
      assertTrue(
          init.contains("local/" + env.get("COMPACTOR_S3_BUCKET")),
          service + ": bucket " + env.get("COMPACTOR_S3_BUCKET") + " is not created by minio-init");
      assertEquals(
          "service_completed_successfully",
          services.get(service).get("depends_on").get("minio-init").get("condition").asText());
    }
  }

  @Test
  void orchestratorSetsOnlySettingsItReadsWithValidValues() {
    Map<String, String> env = env("orchestrator");
    Set<String> known =
        OrchestratorConfig.keys().stream()
            .map(OrchestratorConfig.Key::env)
            .collect(Collectors.toSet());
    for (String name : env.keySet()) {
      assertTrue(
          known.contains(name), "orchestrator: " + name + " is not read by OrchestratorConfig");
    }
    OrchestratorConfig config = OrchestratorConfig.of(env);
    String healthcheck =
        String.join(" ", texts(services.get("orchestrator").get("healthcheck").get("test")));
    assertTrue(
        healthcheck.contains(":" + config.get(OrchestratorConfig.HTTP_PORT) + "/health"),
        "the health check probes COMPACTOR_HTTP_PORT: " + healthcheck);
  }

  @Test
  void stageServicesSetOnlySettingsStageConfigReadsWithValidValues() {
    Set<String> known =
        StageConfig.keys().stream().map(ConfigKey::envName).collect(Collectors.toSet());
    for (String service : STAGE_SERVICES.keySet()) {
      Map<String, String> env = env(service);
      for (String name : env.keySet()) {
        assertTrue(known.contains(name), service + ": " + name + " is not read by StageConfig");
      }
      StageConfig config = StageConfig.of(env);
      String healthcheck =
          String.join(" ", texts(services.get(service).get("healthcheck").get("test")));
      assertTrue(
          healthcheck.contains(":" + config.get(StageConfig.HEALTH_PORT) + "/health"),
          service + ": the health check probes COMPACTOR_HEALTH_PORT: " + healthcheck);
    }
  }

  @Test
  void everyServicePassesKafkaSecurityAndRegistryCredentialsThrough() {
    for (String service : appServices()) {
      Map<String, String> env = env(service);
      assertTrue(env.containsKey("COMPACTOR_KAFKA_PROPERTIES_FILE"), service);
      assertTrue(env.containsKey("COMPACTOR_SCHEMA_REGISTRY_USER_INFO"), service);
    }
    assertTrue(env("orchestrator").containsKey("COMPACTOR_API_TOKEN"));
    assertEquals(
        List.of("127.0.0.1:8080:8080"),
        texts(services.get("orchestrator").get("ports")),
        "the job API is published on the host's loopback only");
  }

  @Test
  void computeStagesReserveAnNvidiaGpuAndOthersDoNot() {
    for (String service : appServices()) {
      JsonNode devices = services.get(service).at("/deploy/resources/reservations/devices");
      if (GPU_SERVICES.contains(service)) {
        assertFalse(devices.isMissingNode(), service + " must reserve a GPU");
        assertEquals("nvidia", devices.get(0).get("driver").asText(), service);
        assertTrue(texts(devices.get(0).get("capabilities")).contains("gpu"), service);
      } else {
        assertTrue(devices.isMissingNode(), service + " needs no GPU");
      }
    }
  }

  @Test
  void everyServiceButTheOneShotInitHasAHealthCheckAndDependenciesExist() {
    Set<String> names = new TreeSet<>();
    services.fieldNames().forEachRemaining(names::add);
    for (String service : names) {
      JsonNode s = services.get(service);
      if (!service.equals("minio-init")) {
        assertTrue(s.has("healthcheck"), service + " has no healthcheck");
      }
      if (s.has("depends_on")) {
        s.get("depends_on")
            .fieldNames()
            .forEachRemaining(
                dep -> {
                  if (!names.contains(dep)) {
                    fail(service + " depends on unknown service " + dep);
                  }
                });
      } else if (!List.of("kafka", "minio").contains(service)) {
        fail(service + " has no depends_on");
      }
    }
  }

  static List<String> appServices() {
    List<String> apps = new java.util.ArrayList<>(List.of("orchestrator"));
    apps.addAll(new TreeSet<>(STAGE_SERVICES.keySet()));
    return apps;
  }

  static List<String> texts(JsonNode array) {
    return StreamSupport.stream(array.spliterator(), false).map(JsonNode::asText).toList();
  }
}
