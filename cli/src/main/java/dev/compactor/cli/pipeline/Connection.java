package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import java.util.Arrays;
import java.util.Set;

/**
 * How {@code submit}, {@code status} and {@code watch} reach a running pipeline: each endpoint from
 * its flag, else its {@code COMPACTOR_*} environment variable (as {@code compactor up} prints
 * them), else the docker-compose default.
 */
record Connection(String bootstrap, String registry, String http) {
  static final Set<String> OPTIONS = Set.of("bootstrap", "registry", "http");

  static Connection from(Args args) {
    return new Connection(
        args.string("bootstrap", env("COMPACTOR_KAFKA_BOOTSTRAP", "localhost:9092")),
        args.string("registry", env("COMPACTOR_SCHEMA_REGISTRY_URL", "http://localhost:8081")),
        args.string("http", env("COMPACTOR_ORCHESTRATOR_URL", "http://localhost:8080")));
  }

  /** Splits a leading positional argument (a job id) from the options. */
  static String[] positional(String[] argv, int max, String[] out) throws UsageException {
    int n = 0;
    while (n < argv.length && !argv[n].startsWith("--")) {
      n++;
    }
    if (n > max) {
      throw new UsageException("unexpected argument '" + argv[max] + "'");
    }
    System.arraycopy(argv, 0, out, 0, n);
    return Arrays.copyOfRange(argv, n, argv.length);
  }

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isBlank() ? fallback : v;
  }
}
