package dev.compactor.core.engine;

import ai.djl.pytorch.jni.JniUtils;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How many threads libtorch may use, decided in one place for every entry point (the CLI, the
 * services, the benches, the tests): {@code COMPACTOR_TORCH_THREADS} if set, else the CPUs this JVM
 * may actually use ({@link Runtime#availableProcessors}, which honours cgroup quotas and CPU
 * affinity, where libtorch alone counts every core of the host).
 *
 * <p>Why: libtorch's OpenMP workers spin-wait for work; with more workers than free cores (a
 * container on a big host, or other busy processes) they steal the CPU from each other and a
 * training run became ten times slower. The launcher, the Dockerfile and the test JVMs also set
 * {@code OMP_WAIT_POLICY=PASSIVE}, which libgomp reads only at process start, so it cannot be set
 * from here.
 *
 * <p>Call {@link #configure()} before the engine loads (the first NDArray): DJL reads the thread
 * counts once, when it starts the engine. Called later, only the intra-op count can still change,
 * and it is applied directly.
 */
public final class TorchThreads {

  /** Environment variable: intra-op threads for libtorch (a positive integer). */
  public static final String ENV = "COMPACTOR_TORCH_THREADS";

  /** DJL's system property for libtorch's intra-op threads (read when the engine starts). */
  public static final String INTRA_OP_PROPERTY = "ai.djl.pytorch.num_threads";

  /** DJL's system property for libtorch's inter-op threads (read when the engine starts). */
  public static final String INTER_OP_PROPERTY = "ai.djl.pytorch.num_interop_threads";

  private static final Logger LOG = LoggerFactory.getLogger(TorchThreads.class);
  private static Setting applied;

  private TorchThreads() {}

  /**
   * The thread counts chosen and where they came from.
   *
   * @param intraOp threads one operator (a matmul) is split across
   * @param interOp threads for independent operators run concurrently; DJL runs operators one after
   *     the other in eager mode, so one is enough
   * @param source what decided them, for the log
   */
  public record Setting(int intraOp, int interOp, String source) {}

  /**
   * Applies the setting for this JVM once and returns it; later calls return the first answer. An
   * explicit {@code -Dai.djl.pytorch.num_threads} / {@code num_interop_threads} wins over both
   * {@code COMPACTOR_TORCH_THREADS} and the CPU count.
   *
   * @throws IllegalArgumentException when {@code COMPACTOR_TORCH_THREADS} is not a positive integer
   */
  public static synchronized Setting configure() {
    if (applied != null) {
      return applied;
    }
    Setting chosen =
        choose(
            System.getenv(ENV),
            System.getProperty(INTRA_OP_PROPERTY),
            System.getProperty(INTER_OP_PROPERTY),
            Runtime.getRuntime().availableProcessors());
    System.setProperty(INTRA_OP_PROPERTY, Integer.toString(chosen.intraOp()));
    System.setProperty(INTER_OP_PROPERTY, Integer.toString(chosen.interOp()));
    boolean late = applyIfEngineIsLoaded(chosen.intraOp());
    LOG.info(
        "libtorch threads: {} intra-op, {} inter-op ({}){}",
        chosen.intraOp(),
        chosen.interOp(),
        chosen.source(),
        late ? "; the engine was already running, intra-op count applied directly" : "");
    applied = chosen;
    return chosen;
  }

  /** The decision itself, free of the environment so it can be tested. */
  static Setting choose(String env, String intraProperty, String interProperty, int available) {
    int intra;
    String source;
    if (intraProperty != null && !intraProperty.isBlank()) {
      intra = positive("-D" + INTRA_OP_PROPERTY, intraProperty);
      source = "-D" + INTRA_OP_PROPERTY;
    } else if (env != null && !env.isBlank()) {
      intra = positive(ENV, env);
      source = ENV;
    } else {
      intra = Math.max(1, available);
      source = "available processors";
    }
    int inter =
        interProperty != null && !interProperty.isBlank()
            ? positive("-D" + INTER_OP_PROPERTY, interProperty)
            : 1;
    return new Setting(intra, inter, source);
  }

  private static int positive(String name, String value) {
    int n;
    try {
      n = Integer.parseInt(value.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          name + " must be a positive integer (threads), found '" + value + "'");
    }
    if (n < 1) {
      throw new IllegalArgumentException(
          name + " must be a positive integer (threads), found " + n);
    }
    return n;
  }

  private static boolean applyIfEngineIsLoaded(int intraOp) {
    try {
      if (JniUtils.getNumThreads() != intraOp) {
        JniUtils.setNumThreads(intraOp);
      }
      return true;
    } catch (UnsatisfiedLinkError notLoadedYet) {
      // the usual case: DJL reads the system properties when it loads libtorch
      return false;
    }
  }
}
