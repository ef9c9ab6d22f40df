package dev.compactor.core.tiny;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import dev.compactor.core.tokenizer.ByteTokenizer;
import dev.compactor.core.train.AdamW;
import dev.compactor.core.train.CausalLmTrainer;
import dev.compactor.core.train.CosineSchedule;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A small byte-level Llama trained here, from a fixed seed, on the English Europarl text: a real
 * model whose quality visibly drops when it is pruned or quantized, made in minutes on a laptop CPU
 * with nothing downloaded. It is saved as an ordinary Hugging Face directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json) plus training_report.json and
 * SHA256SUMS.
 *
 * <p>The project's build of it ships in the repository ({@link #shipped()}, {@code
 * models/tiny-llama-v1/}, with its TRAINING.md): the demo, the tests and {@code compactor
 * tiny-model} use that copy. {@link #buildOrReuse} retrains it (a directory built by the same
 * recipe from the same text is reused).
 */
public final class TinyReferenceModel {

  /** The recipe of {@code tiny-llama-v1}. */
  public static final TinyRecipe RECIPE =
      new TinyRecipe(
          "tiny-llama-v1", 128, 512, 4, 4, 2, 256, 16, 500, 3e-3, 3e-4, 30, 0.1, 0.95, 1.0, 1234);

  /** Windows used to measure held-out quality (the same defaults as {@code compactor eval}). */
  public static final int EVAL_SEQ_LEN = 256;

  public static final String REPORT = "training_report.json";

  /** {@code sha256sum} lines of every file of a build; checked before a shipped copy is used. */
  public static final String CHECKSUMS = "SHA256SUMS";

  /** Where the repository keeps its build, relative to the repository root. */
  public static final String SHIPPED_DIR = "models/" + RECIPE.name();

  /** Overrides where {@link #shipped()} looks (a directory holding the build). */
  public static final String SHIPPED_ENV = "COMPACTOR_TINY_MODEL_DIR";

  private static final Logger LOG = LoggerFactory.getLogger(TinyReferenceModel.class);
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private TinyReferenceModel() {}

  /** {@code $COMPACTOR_CACHE/tiny-llama-v1}, or {@code ~/.cache/compactor/tiny-llama-v1}. */
  public static Path defaultDir() {
    String cache = System.getenv("COMPACTOR_CACHE");
    Path root =
        cache != null && !cache.isBlank()
            ? Path.of(cache)
            : Path.of(System.getProperty("user.home"), ".cache", "compactor");
    return root.resolve(RECIPE.name());
  }

  /**
   * The build that ships with the repository: {@code $COMPACTOR_TINY_MODEL_DIR}, else {@value
   * #SHIPPED_DIR} found in the working directory or one of its parents (Maven runs tests in the
   * module directory), else above the jar or classes directory this class was loaded from. Its
   * files are checked against its SHA256SUMS, so a truncated or LFS-pointer copy fails here with
   * the reason instead of producing garbage later.
   *
   * @throws IllegalStateException when no complete, intact copy is found
   */
  public static Path shipped() {
    return shipped(SHIPPED_DIR, SHIPPED_ENV, "tiny-model --train");
  }

  /**
   * A build that ships with the repository under {@code shippedDir} (relative to the repository
   * root): {@code $envVar} when set, else {@code shippedDir} found from the working directory or
   * the code location upwards, checked against its SHA256SUMS. {@code retrain} names the command
   * that rebuilds it, for the error message.
   *
   * @throws IllegalStateException when no complete, intact copy is found
   */
  public static Path shipped(String shippedDir, String envVar, String retrain) {
    String env = System.getenv(envVar);
    List<Path> tried = new ArrayList<>();
    if (env != null && !env.isBlank()) {
      Path dir = Path.of(env);
      verify(dir);
      return dir;
    }
    List<Path> anchors = new ArrayList<>();
    anchors.add(Path.of("").toAbsolutePath());
    try {
      anchors.add(
          Path.of(
                  TinyReferenceModel.class
                      .getProtectionDomain()
                      .getCodeSource()
                      .getLocation()
                      .toURI())
              .toAbsolutePath());
    } catch (Exception e) {
      // no code source (e.g. a custom class loader): the working directory is the only anchor
    }
    for (Path anchor : anchors) {
      for (Path p = anchor; p != null; p = p.getParent()) {
        Path dir = p.resolve(shippedDir);
        if (Files.isRegularFile(dir.resolve(CHECKSUMS))) {
          verify(dir);
          return dir;
        }
        tried.add(dir);
      }
    }
    throw new IllegalStateException(
        "the reference model ships in the repository under "
            + shippedDir
            + " but no copy was found (looked in "
            + tried.size()
            + " places from "
            + anchors
            + "); run from a checkout, set "
            + envVar
            + ", or retrain it with `compactor "
            + retrain
            + "`");
  }

  /**
   * Copies the shipped build into {@code out} (created; must be absent or empty) and returns it.
   */
  public static Path copyShipped(Path out) throws IOException {
    return copyShipped(shipped(), out);
  }

  /**
   * Copies the verified build in {@code from} into {@code out} (absent or empty) and returns it.
   */
  public static Path copyShipped(Path from, Path out) throws IOException {
    verify(from);
    if (Files.isDirectory(out)) {
      try (Stream<Path> entries = Files.list(out)) {
        if (entries.findAny().isPresent()) {
          throw new IllegalArgumentException(out + " must be absent or empty");
        }
      }
    }
    Files.createDirectories(out);
    try (Stream<Path> files = Files.list(from)) {
      for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile).sorted()::iterator) {
        Files.copy(f, out.resolve(f.getFileName().toString()));
      }
    }
    verify(out);
    return out;
  }

  /**
   * Checks that {@code dir} holds a complete build whose files match its SHA256SUMS.
   *
   * @throws IllegalStateException naming the first missing or altered file
   */
  public static void verify(Path dir) {
    if (recordedHash(dir) == null) {
      throw new IllegalStateException(
          dir
              + " holds no complete tiny reference model (config.json, model.safetensors, "
              + "tokenizer.json, "
              + REPORT
              + ")");
    }
    Path sums = dir.resolve(CHECKSUMS);
    try {
      List<String> lines = Files.readAllLines(sums, StandardCharsets.UTF_8);
      if (lines.isEmpty()) {
        throw new IllegalStateException(sums + " is empty");
      }
      for (String line : lines) {
        if (line.isBlank()) {
          continue;
        }
        String[] parts = line.split("\\s+\\*?", 2);
        if (parts.length != 2 || parts[0].length() != 64) {
          throw new IllegalStateException(
              sums + ": expected '<sha256>  <file>', found '" + line + "'");
        }
        Path f = dir.resolve(parts[1].trim());
        if (!Files.isRegularFile(f)) {
          throw new IllegalStateException(sums + " lists " + parts[1] + ", which is missing");
        }
        String actual = TinyRecipe.sha256(Files.readAllBytes(f));
        if (!actual.equals(parts[0])) {
          throw new IllegalStateException(
              f
                  + ": sha256 "
                  + actual
                  + " but "
                  + CHECKSUMS
                  + " records "
                  + parts[0]
                  + " (a git-lfs pointer, a line-ending conversion or a partial copy?)");
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException(
          dir + ": cannot check " + CHECKSUMS + ": " + e.getMessage(), e);
    }
  }

  /** The model in the default cache directory, trained first if it is missing or stale. */
  public static Path buildOrReuse(ProgressListener progress) throws IOException {
    return buildOrReuse(defaultDir(), progress);
  }

  /**
   * Returns {@code dir} holding the model of {@link #RECIPE}: reused when its recorded recipe hash
   * matches, otherwise trained (a few minutes on two cores) and written atomically. Concurrent
   * callers, in this JVM or others, wait for one build.
   */
  public static Path buildOrReuse(Path dir, ProgressListener progress) throws IOException {
    return buildOrReuse(dir, RECIPE, progress);
  }

  static synchronized Path buildOrReuse(Path dir, TinyRecipe recipe, ProgressListener progress)
      throws IOException {
    Corpus corpus = Corpus.europarlEnglish();
    String hash =
        recipe.hash(TinyRecipe.sha256(corpus.trainText().getBytes(StandardCharsets.UTF_8)));
    return buildLocked(dir, hash, recipe.name(), tmp -> build(tmp, recipe, hash, corpus, progress));
  }

  /** Writes a model directory into a scratch path it is given, which must not exist yet. */
  @FunctionalInterface
  private interface Build {
    void into(Path tmp) throws IOException;
  }

  /**
   * {@code dir} when it records {@code hash}; otherwise built into a sibling directory and moved
   * into place. One lock file per hash: concurrent callers, in this JVM or others, wait for one
   * build, and a build of another recipe (an older checkout sharing the cache) does not keep this
   * one waiting; whichever finishes last owns the directory.
   */
  private static Path buildLocked(Path dir, String hash, String name, Build build)
      throws IOException {
    Path parent = dir.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path lockFile = parent.resolve(dir.getFileName() + "." + hash.substring(0, 12) + ".lock");
    try (RandomAccessFile raf = new RandomAccessFile(lockFile.toFile(), "rw");
        FileChannel channel = raf.getChannel();
        FileLock lock = channel.lock()) {
      if (hash.equals(recordedHash(dir))) {
        LOG.info("reusing reference model {} in {} (recipe {})", name, dir, hash.substring(0, 12));
        return dir;
      }
      LOG.info("training reference model {} into {}", name, dir);
      Path tmp = parent.resolve(dir.getFileName() + ".tmp-" + ProcessHandle.current().pid());
      deleteRecursively(tmp);
      build.into(tmp);
      deleteRecursively(dir);
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      return dir;
    }
  }

  /** The recipe hash recorded in {@code dir}, or null if it holds no complete build. */
  static String recordedHash(Path dir) {
    Path report = dir.resolve(REPORT);
    for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json"}) {
      if (!Files.isRegularFile(dir.resolve(f))) {
        return null;
      }
    }
    if (!Files.isRegularFile(report)) {
      return null;
    }
    try {
      return JSON.readTree(report.toFile()).path("recipeHash").asText(null);
    } catch (IOException e) {
      return null;
    }
  }

  /** Reads the training report of a built directory. */
  public static TrainingReport report(Path dir) throws IOException {
    return TrainingReport.read(dir.resolve(REPORT));
  }

  private static void build(
      Path out, TinyRecipe recipe, String hash, Corpus corpus, ProgressListener progress)
      throws IOException {
    build(out, recipe, recipe.config(), DType.F32, hash, corpus, progress);
  }

  /**
   * Trains a byte-level model of architecture {@code config} (the recipe's vocabulary and context)
   * with {@code recipe}'s data, optimiser, schedule and seed, and writes it with its tokenizer,
   * training report and checksums to {@code out}, which must not exist. For reference models of
   * other architectures (the MoE one); the recorded hash covers the recipe, the config and the
   * training text.
   */
  public static void train(
      Path out, TinyRecipe recipe, ModelConfig config, ProgressListener progress)
      throws IOException {
    train(out, recipe, config, DType.F32, progress);
  }

  /**
   * As {@link #train(Path, TinyRecipe, ModelConfig, ProgressListener)}, with the weights stored as
   * {@code storeAs} (F32, F16 or BF16; training itself is fp32). The held-out figures of the report
   * are measured on the stored file as loaded back, so they describe what ships.
   */
  public static void train(
      Path out, TinyRecipe recipe, ModelConfig config, DType storeAs, ProgressListener progress)
      throws IOException {
    if (Files.exists(out)) {
      throw new IOException(out + " already exists");
    }
    Corpus corpus = Corpus.europarlEnglish();
    build(out, recipe, config, storeAs, recipeHash(recipe, config, corpus), corpus, progress);
  }

  /**
   * Returns {@code dir} holding the model that {@link #train(Path, TinyRecipe, ModelConfig, DType,
   * ProgressListener)} makes: reused when its recorded hash matches, otherwise trained into a
   * sibling directory and moved into place. Concurrent callers, in this JVM or others, wait for one
   * build.
   */
  public static synchronized Path buildOrReuse(
      Path dir, TinyRecipe recipe, ModelConfig config, DType storeAs, ProgressListener progress)
      throws IOException {
    Corpus corpus = Corpus.europarlEnglish();
    String hash = recipeHash(recipe, config, corpus);
    return buildLocked(
        dir,
        hash,
        recipe.name(),
        tmp -> build(tmp, recipe, config, storeAs, hash, corpus, progress));
  }

  /** The hash {@link #train(Path, TinyRecipe, ModelConfig, ProgressListener)} records. */
  public static String recipeHash(TinyRecipe recipe, ModelConfig config) throws IOException {
    return recipeHash(recipe, config, Corpus.europarlEnglish());
  }

  private static String recipeHash(TinyRecipe recipe, ModelConfig config, Corpus corpus) {
    String text = TinyRecipe.sha256(corpus.trainText().getBytes(StandardCharsets.UTF_8));
    return TinyRecipe.sha256(
        (recipe.hash(text) + "|config=" + config.toJson()).getBytes(StandardCharsets.UTF_8));
  }

  private static void build(
      Path out,
      TinyRecipe recipe,
      ModelConfig config,
      DType storeAs,
      String hash,
      Corpus corpus,
      ProgressListener progress)
      throws IOException {
    ByteTokenizer tokenizer = new ByteTokenizer();
    int[] train = tokenizer.encode(corpus.trainText());
    long start = System.nanoTime();
    ArrayNode curve = JSON.createArrayNode();
    double finalLoss;
    try (Transformer model = Transformer.randomInit(config, recipe.seed(), Device.cpu())) {
      finalLoss = train(model, train, recipe, curve, progress);
      double trainingSeconds = (System.nanoTime() - start) / 1e9;
      save(model, out, storeAs);
      ByteLevelTokenizerFiles.write(out, recipe.context());
      int window = Math.min(EVAL_SEQ_LEN, recipe.context());
      PerplexityEvaluator eval = new PerplexityEvaluator(window, window);
      PerplexityResult validation;
      PerplexityResult test;
      // measured on the file as loaded back: for BF16 storage that is what ships, not the fp32
      // weights still in memory
      try (Transformer stored = Transformer.load(out, Device.cpu())) {
        validation = eval.evaluate(stored, tokenizer, corpus.validationText(), progress);
        test = eval.evaluate(stored, tokenizer, corpus.testText(), progress);
      }
      ByteUnigramModel unigram = ByteUnigramModel.train(corpus.trainText());
      ObjectNode report = JSON.createObjectNode();
      report.put("recipeHash", hash);
      report.set("recipe", JSON.valueToTree(recipe));
      report.put("parameters", config.parameterCount());
      report.put("weightsDType", storeAs.safetensorsName());
      report.put("weightsBytes", Files.size(out.resolve("model.safetensors")));
      report.put("corpus", corpus.name());
      report.put("trainBytes", train.length);
      report.put("tokensSeen", (long) recipe.steps() * recipe.batch() * recipe.context());
      report.put("trainingSeconds", trainingSeconds);
      report.put("availableProcessors", Runtime.getRuntime().availableProcessors());
      report.put("finalTrainLoss", finalLoss);
      report.put("evalSeqLen", window);
      report.put("evalStride", window);
      report.set("validation", result(validation, unigram.bitsPerByte(corpus.validationText())));
      report.set("test", result(test, unigram.bitsPerByte(corpus.testText())));
      report.set("lossCurve", curve);
      report.put("createdAt", Instant.now().toString());
      JSON.writeValue(out.resolve(REPORT).toFile(), report);
      writeChecksums(out);
      LOG.info(
          "{} trained in {} s: validation ppl {} bpb {} (unigram bpb {})",
          recipe.name(),
          String.format("%.1f", trainingSeconds),
          String.format("%.3f", validation.perplexity()),
          String.format("%.3f", validation.bitsPerByte()),
          String.format("%.3f", unigram.bitsPerByte(corpus.validationText())));
    }
  }

  private static double train(
      Transformer model, int[] data, TinyRecipe r, ArrayNode curve, ProgressListener progress) {
    SplittableRandom random = new SplittableRandom(r.seed());
    long start = System.nanoTime();
    double smoothed = Double.NaN;
    try (AdamW adamw =
        new AdamW(
            model.parameters(),
            0.9,
            r.beta2(),
            1e-8,
            r.weightDecay(),
            AdamW.matricesOnly(model.parameters()))) {
      CausalLmTrainer trainer =
          CausalLmTrainer.languageModeling(
              model,
              adamw,
              new CosineSchedule(r.peakLr(), r.minLr(), r.warmupSteps(), r.steps()),
              r.clipNorm());
      int[][] batch = new int[r.batch()][r.context()];
      for (int step = 0; step < r.steps(); step++) {
        for (int[] row : batch) {
          System.arraycopy(data, random.nextInt(data.length - r.context()), row, 0, r.context());
        }
        float loss = trainer.step(batch);
        if (!Float.isFinite(loss)) {
          throw new IllegalStateException("training diverged at step " + step + ": loss " + loss);
        }
        smoothed = Double.isNaN(smoothed) ? loss : 0.9 * smoothed + 0.1 * loss;
        if ((step + 1) % 25 == 0 || step == 0) {
          ObjectNode point = curve.addObject();
          point.put("step", step + 1);
          point.put("loss", smoothed);
          LOG.info(
              "{} step {}/{} loss {} ({} s)",
              r.name(),
              step + 1,
              r.steps(),
              smoothed,
              String.format("%.0f", (System.nanoTime() - start) / 1e9));
        }
        progress.onProgress("train", step + 1, r.steps());
      }
    }
    return smoothed;
  }

  private static void save(Transformer model, Path out, DType storeAs) throws IOException {
    Files.createDirectories(out);
    if (storeAs != DType.F32) {
      model.save(out, storeAs, Map.of());
      return;
    }
    Files.writeString(out.resolve("config.json"), model.config().toJson());
    try (SafetensorsWriter writer = new SafetensorsWriter(out, Map.of())) {
      for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
        NDArray p = e.getValue();
        writer.write(e.getKey(), DType.F32, p.getShape().getShape(), p.toFloatArray());
      }
    }
  }

  private static void writeChecksums(Path dir) throws IOException {
    StringBuilder sums = new StringBuilder();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile).sorted()::iterator) {
        sums.append(TinyRecipe.sha256(Files.readAllBytes(f)))
            .append("  ")
            .append(f.getFileName())
            .append('\n');
      }
    }
    Files.writeString(dir.resolve(CHECKSUMS), sums.toString(), StandardCharsets.UTF_8);
  }

  private static ObjectNode result(PerplexityResult r, double unigramBpb) {
    ObjectNode node = JSON.createObjectNode();
    node.put("tokens", r.tokens());
    node.put("bytes", r.bytes());
    node.put("perplexity", r.perplexity());
    node.put("bitsPerByte", r.bitsPerByte());
    node.put("unigramBitsPerByte", unigramBpb);
    return node;
  }

  private static void deleteRecursively(Path path) throws IOException {
    if (!Files.exists(path)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(path)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.delete(p);
      }
    }
  }
}
