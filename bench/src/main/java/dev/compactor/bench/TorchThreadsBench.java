package dev.compactor.bench;

import ai.djl.Device;
import ai.djl.pytorch.jni.JniUtils;
import dev.compactor.core.engine.TorchThreads;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.train.AdamW;
import dev.compactor.core.train.CausalLmTrainer;
import dev.compactor.core.train.CosineSchedule;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Training steps per second of a small Llama (hidden 128, 2 layers, context 128, batch 8) in a
 * fresh JVM per variant, each run once with every core free and once with one core kept busy by a
 * spinning thread of this process (what another job on the machine does). Variants: libgomp's
 * default wait policy (workers spin) versus {@code OMP_WAIT_POLICY=PASSIVE}, with the thread count
 * {@link TorchThreads} chooses (the available processors) and with one thread. The variant "before"
 * is what the CLI did until the launcher set the wait policy; "after" is what every entry point
 * does now.
 *
 * <p>Run: {@code java -cp $CP dev.compactor.bench.TorchThreadsBench [seconds per run=8]}. A fresh
 * JVM per run is required: libgomp reads {@code OMP_WAIT_POLICY} at process start only.
 */
public final class TorchThreadsBench {

  private TorchThreadsBench() {}

  private record Variant(String name, boolean passive, String threads) {}

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("--child")) {
      child(Double.parseDouble(args[1]));
      return;
    }
    double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 8;
    int cpus = Runtime.getRuntime().availableProcessors();
    System.out.printf(
        "TorchThreadsBench: %d available processors, %.0f s of training per run%n", cpus, seconds);
    List<Variant> variants =
        List.of(
            new Variant("before: spin-wait, " + cpus + " threads", false, Integer.toString(cpus)),
            new Variant("after: PASSIVE, " + cpus + " threads", true, Integer.toString(cpus)),
            new Variant("PASSIVE, 1 thread", true, "1"));
    System.out.printf(
        "%-32s %14s %14s %8s%n", "variant", "idle steps/s", "busy steps/s", "busy/idle");
    for (Variant v : variants) {
      double idle = run(v, seconds, false);
      double busy = run(v, seconds, true);
      System.out.printf("%-32s %14.2f %14.2f %8.2f%n", v.name(), idle, busy, busy / idle);
    }
  }

  private static double run(Variant v, double seconds, boolean busyCore) throws Exception {
    AtomicBoolean stop = new AtomicBoolean();
    Thread spinner =
        new Thread(
            () -> {
              long x = 0;
              while (!stop.get()) {
                x += System.nanoTime() & 1;
              }
              if (x == 42) {
                System.out.print("");
              }
            },
            "busy-core");
    spinner.setDaemon(true);
    if (busyCore) {
      spinner.start();
    }
    try {
      List<String> cmd = new ArrayList<>();
      cmd.add(ProcessHandle.current().info().command().orElse("java"));
      cmd.add("-cp");
      cmd.add(System.getProperty("java.class.path"));
      cmd.add("-Dai.djl.offline=true");
      cmd.add(TorchThreadsBench.class.getName());
      cmd.add("--child");
      cmd.add(Double.toString(seconds));
      ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
      pb.environment().remove("OMP_WAIT_POLICY");
      pb.environment().remove("OMP_NUM_THREADS");
      if (v.passive()) {
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
      }
      pb.environment().put(TorchThreads.ENV, v.threads());
      Process p = pb.start();
      double stepsPerSecond = Double.NaN;
      try (BufferedReader r =
          new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = r.readLine(); line != null; line = r.readLine()) {
          if (line.startsWith("steps/s ")) {
            stepsPerSecond = Double.parseDouble(line.substring(8).trim());
          }
        }
      }
      if (p.waitFor() != 0 || Double.isNaN(stepsPerSecond)) {
        throw new IllegalStateException("child run of '" + v.name() + "' failed");
      }
      return stepsPerSecond;
    } finally {
      stop.set(true);
    }
  }

  private static void child(double seconds) {
    TorchThreads.Setting s = TorchThreads.configure();
    ModelConfig config = ModelConfig.llama(257, 128, 512, 2, 4, 2, 128);
    SplittableRandom random = new SplittableRandom(5);
    try (Transformer model = Transformer.randomInit(config, 5, Device.cpu());
        AdamW adamw = new AdamW(model.parameters(), 0.1)) {
      CausalLmTrainer trainer =
          CausalLmTrainer.languageModeling(
              model, adamw, new CosineSchedule(1e-3, 1e-4, 5, 100_000), 1.0);
      int[][] batch = new int[8][128];
      for (int warm = 0; warm < 3; warm++) {
        step(trainer, batch, random);
      }
      if (JniUtils.getNumThreads() != s.intraOp()) {
        throw new IllegalStateException(
            "libtorch runs " + JniUtils.getNumThreads() + " threads, asked for " + s.intraOp());
      }
      long start = System.nanoTime();
      long deadline = start + (long) (seconds * 1e9);
      int steps = 0;
      while (System.nanoTime() < deadline) {
        step(trainer, batch, random);
        steps++;
      }
      System.out.println("steps/s " + steps / ((System.nanoTime() - start) / 1e9));
    }
  }

  private static void step(CausalLmTrainer trainer, int[][] batch, SplittableRandom random) {
    for (int[] row : batch) {
      for (int i = 0; i < row.length; i++) {
        row[i] = random.nextInt(257);
      }
    }
    trainer.step(batch);
  }
}
