package dev.compactor.core.distill;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The on-disk form of a distillation checkpoint, one directory:
 *
 * <pre>
 *   student.safetensors    every student parameter, F32, by its Hugging Face name
 *   optimizer.safetensors  "m." + name and "v." + name: AdamW's first and second moments
 *   state.json             {"format", "version", "step", "seed", "batch_size", "windows",
 *                           "optimizer_steps"}
 * </pre>
 *
 * Plain files only, so a sink can map them one to one onto object storage. Weights and moments are
 * kept in full fp32 so a resumed run continues bit for bit. The data cursor is the step itself (see
 * {@link TrainingOrder}); seed, batch size and window count are stored to refuse a resume whose
 * data order would differ.
 */
final class DistillationCheckpoint {

  static final String FORMAT = "compactor-distill-checkpoint";
  static final int VERSION = 1;
  static final String STUDENT = "student.safetensors";
  static final String OPTIMIZER = "optimizer.safetensors";

  /** The file name a single-shard SafetensorsWriter produces. */
  private static final String WRITER_FILE = "model.safetensors";

  private static final ObjectMapper JSON = new ObjectMapper();

  private DistillationCheckpoint() {}

  static void write(
      Path dir,
      long step,
      DistillationSpec spec,
      int windows,
      Map<String, NDArray> params,
      StudentOptimizer optimizer)
      throws IOException {
    Path staging = dir.resolve("staging");
    try (SafetensorsWriter w = new SafetensorsWriter(staging.resolve("student"), Map.of())) {
      for (Map.Entry<String, NDArray> e : params.entrySet()) {
        NDArray p = e.getValue();
        w.write(e.getKey(), DType.F32, p.getShape().getShape(), p.toFloatArray());
      }
    }
    try (SafetensorsWriter w = new SafetensorsWriter(staging.resolve("optimizer"), Map.of())) {
      for (Map.Entry<String, NDArray> e : optimizer.firstMoments().entrySet()) {
        w.write("m." + e.getKey(), DType.F32, shape(e.getValue()), e.getValue().toFloatArray());
      }
      for (Map.Entry<String, NDArray> e : optimizer.secondMoments().entrySet()) {
        w.write("v." + e.getKey(), DType.F32, shape(e.getValue()), e.getValue().toFloatArray());
      }
    }
    Files.move(staging.resolve("student").resolve(WRITER_FILE), dir.resolve(STUDENT));
    Files.move(staging.resolve("optimizer").resolve(WRITER_FILE), dir.resolve(OPTIMIZER));
    deleteTree(staging);
    ObjectNode state = JSON.createObjectNode();
    state.put("format", FORMAT);
    state.put("version", VERSION);
    state.put("step", step);
    state.put("seed", spec.seed());
    state.put("batch_size", spec.batchSize());
    state.put("windows", windows);
    state.put("optimizer_steps", optimizer.updates());
    Files.writeString(dir.resolve("state.json"), JSON.writeValueAsString(state));
  }

  /** Loads the checkpoint into {@code params} and {@code optimizer}; returns its step. */
  static long restore(
      CheckpointSink.Checkpoint checkpoint,
      DistillationSpec spec,
      int windows,
      Map<String, NDArray> params,
      StudentOptimizer optimizer)
      throws IOException {
    Path dir = checkpoint.directory();
    Path stateFile = dir.resolve("state.json");
    if (!Files.isRegularFile(stateFile)) {
      throw new CheckpointFormatException(
          dir + ": expected state.json of a distillation checkpoint");
    }
    JsonNode state = JSON.readTree(stateFile.toFile());
    expect(dir, "format", FORMAT, state.path("format").asText());
    expect(dir, "version", Integer.toString(VERSION), state.path("version").asText());
    expect(dir, "seed", Long.toString(spec.seed()), state.path("seed").asText());
    expect(
        dir, "batch_size", Integer.toString(spec.batchSize()), state.path("batch_size").asText());
    expect(dir, "windows", Integer.toString(windows), state.path("windows").asText());
    long step = state.path("step").asLong(-1);
    if (step < 0 || step != checkpoint.step()) {
      throw new CheckpointFormatException(
          dir
              + ": state.json step "
              + step
              + " does not match checkpoint step "
              + checkpoint.step());
    }
    try (TensorSource s = Checkpoints.open(dir.resolve(STUDENT))) {
      for (Map.Entry<String, NDArray> e : params.entrySet()) {
        load(s, e.getKey(), e.getValue(), dir);
      }
    }
    try (TensorSource s = Checkpoints.open(dir.resolve(OPTIMIZER))) {
      for (Map.Entry<String, NDArray> e : optimizer.firstMoments().entrySet()) {
        load(s, "m." + e.getKey(), e.getValue(), dir);
      }
      for (Map.Entry<String, NDArray> e : optimizer.secondMoments().entrySet()) {
        load(s, "v." + e.getKey(), e.getValue(), dir);
      }
    }
    optimizer.setUpdates(state.path("optimizer_steps").asLong());
    return step;
  }

  private static void load(TensorSource s, String name, NDArray target, Path dir)
      throws IOException {
    if (!s.contains(name)) {
      throw new CheckpointFormatException(
          dir + ": expected tensor '" + name + "' in the checkpoint, found none");
    }
    long[] want = shape(target);
    if (!Arrays.equals(want, s.info(name).shape())) {
      throw new CheckpointFormatException(
          dir
              + ": tensor '"
              + name
              + "' has shape "
              + Arrays.toString(s.info(name).shape())
              + ", the student expects "
              + Arrays.toString(want));
    }
    target.set(FloatBuffer.wrap(s.readFloats(name)));
  }

  private static void expect(Path dir, String field, String expected, String found)
      throws CheckpointFormatException {
    if (!expected.equals(found)) {
      throw new CheckpointFormatException(
          dir
              + ": checkpoint "
              + field
              + " is "
              + found
              + " but this run has "
              + expected
              + "; resuming would change the training run");
    }
  }

  private static long[] shape(NDArray a) {
    return a.getShape().getShape();
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  Files.delete(p);
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
