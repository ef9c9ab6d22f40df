package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

/**
 * {@code compactor up}: the demo's pipeline (embedded Kafka, S3, schema registry, orchestrator,
 * every stage service) kept running until Ctrl-C, with its endpoints printed so {@code submit},
 * {@code status}, {@code watch} and any Kafka or S3 client can use it.
 */
public final class UpCommand implements Command {
  @Override
  public String name() {
    return "up";
  }

  @Override
  public String summary() {
    return "run the whole pipeline locally until Ctrl-C and print its endpoints";
  }

  @Override
  public String usage() {
    return "[--data DIR] [--port HTTP_PORT] [--in-process (stage workers in this JVM)]"
        + "  (file:// sources: the data dir and COMPACTOR_SOURCE_FILE_ROOTS)";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("data", "port"), Set.of("in-process"));
    Path data =
        Files.createDirectories(Path.of(args.string("data", Connection.DEFAULT_DATA.toString())));
    java.util.List<Path> roots = new java.util.ArrayList<>();
    String extra = System.getenv("COMPACTOR_SOURCE_FILE_ROOTS");
    if (extra != null && !extra.isBlank()) {
      for (String r : extra.split("[,:]")) {
        if (!r.isBlank()) {
          roots.add(Path.of(r.trim()));
        }
      }
    }
    PipelineStack stack =
        PipelineStack.start(
            data,
            args.integer("port", 8080),
            args.has("in-process")
                ? PipelineStack.Workers.IN_PROCESS
                : PipelineStack.Workers.PROCESSES,
            roots);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  stack.close();
                  stopped.countDown();
                },
                "compactor-up-shutdown"));
    PipelineStack.Endpoints e = stack.endpoints();
    out.println("Compactor is up (data in " + data + "); Ctrl-C stops it.");
    out.println("export COMPACTOR_KAFKA_BOOTSTRAP=" + e.bootstrapServers());
    out.println("export COMPACTOR_SCHEMA_REGISTRY_URL=" + e.schemaRegistryUrl());
    out.println("export COMPACTOR_S3_ENDPOINT=" + e.s3Endpoint());
    out.println("export COMPACTOR_S3_ACCESS_KEY=" + e.s3AccessKey());
    out.println("export COMPACTOR_S3_SECRET_KEY=" + e.s3SecretKey());
    out.println("export COMPACTOR_SCHEMA_REGISTRY_USER_INFO=" + e.schemaRegistryUserInfo());
    out.println("export COMPACTOR_KAFKA_PROPERTIES_FILE=" + e.kafkaPropertiesFile());
    out.println("export COMPACTOR_ORCHESTRATOR_URL=" + stack.orchestratorUrl());
    out.println("export COMPACTOR_API_TOKEN=" + stack.apiToken());
    out.println("Jobs: " + stack.orchestratorUrl() + "/jobs");
    if (!args.has("in-process")) {
      out.println("Stage workers: one process each, logs in " + stack.logDir());
    }
    out.flush();
    stopped.await();
    return 0;
  }
}
