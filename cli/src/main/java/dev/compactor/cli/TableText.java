package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * What the table commands ({@code quality-table}, {@code moe-table}, {@code moefy --table}) share:
 * the held-out text they score ({@code --text FILE} or the Europarl English test split, cut to
 * {@code --max-bytes}), the weights hash that ties a printed table to its model, and their scratch
 * directory's removal.
 *
 * @param text the text to score
 * @param name what the table prints as its source
 */
public record TableText(String text, String name) {

  /** {@code --text FILE} or the Europarl English test split, at most {@code maxBytes} bytes. */
  public static TableText fromArgs(Args args, int maxBytes) throws UsageException, IOException {
    if (args.present("text")) {
      Path f = Path.of(args.required("text"));
      if (!Files.isRegularFile(f)) {
        throw new UsageException("--text: expected a UTF-8 text file, found none at " + f);
      }
      return new TableText(
          truncate(Files.readString(f, StandardCharsets.UTF_8), maxBytes), f.toString());
    }
    return new TableText(
        truncate(Corpus.europarlEnglish().testText(), maxBytes), "Europarl English test split");
  }

  /**
   * What a table command measures with: the held-out text, its tokens and the calibration windows.
   *
   * @param text the text scored and its name
   * @param tokens {@code text} as the model's tokenizer encodes it
   * @param calibration windows of the Europarl training split
   */
  public record Inputs(TableText text, int[] tokens, List<int[]> calibration) {}

  /**
   * The inputs of a table on {@code model}: the text of {@link #fromArgs} cut to {@code
   * --max-bytes} (at least 1000; default {@code defaultMaxBytes}) and tokenized, and {@code
   * samples} calibration windows of {@code seqLen} tokens drawn with {@code seed}.
   */
  public static Inputs inputs(
      Args args, Path model, int defaultMaxBytes, int seqLen, int samples, long seed)
      throws UsageException, IOException {
    int maxBytes = args.integer("max-bytes", defaultMaxBytes);
    if (maxBytes < 1000) {
      throw new UsageException("--max-bytes must be at least 1000, found " + maxBytes);
    }
    TableText held = fromArgs(args, maxBytes);
    try (TextTokenizer tok = Tokenizers.forModel(model)) {
      return new Inputs(
          held,
          EvalText.of(tok, held.text()).tokens(),
          calibrationWindows(tok, samples, seqLen, seed));
    }
  }

  /** {@code samples} windows of {@code seqLen} tokens of the Europarl training split. */
  public static List<int[]> calibrationWindows(
      TextTokenizer tok, int samples, int seqLen, long seed) throws IOException {
    return CalibrationText.builtin().corpus().calibrationSamples(tok, samples, seqLen, seed);
  }

  /**
   * The head every table command's {@code --json} starts with: the model, its weights' hash, the
   * text scored, its token count and the window length.
   */
  public static ObjectNode jsonHeader(Path model, String textName, int tokens, int seqLen) {
    ObjectNode root = new ObjectMapper().createObjectNode();
    root.put("model", model.toString());
    root.put("weights", weightsHash(model));
    root.put("text", textName);
    root.put("tokens", tokens);
    root.put("seqLen", seqLen);
    return root;
  }

  /** The longest prefix of at most {@code maxBytes} UTF-8 bytes, cut at a line end if possible. */
  public static String truncate(String text, int maxBytes) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    if (b.length <= maxBytes) {
      return text;
    }
    String cut = new String(Arrays.copyOf(b, maxBytes), StandardCharsets.UTF_8);
    int nl = cut.lastIndexOf('\n');
    return nl > maxBytes / 2 ? cut.substring(0, nl) : cut;
  }

  /**
   * {@code model.safetensors sha256 <hex>}: which weights a table measured, so a table kept in a
   * document can be checked against the model it names (the path differs between machines).
   */
  public static String weightsHash(Path model) {
    Path weights = model.resolve("model.safetensors");
    try {
      return Files.isRegularFile(weights)
          ? "model.safetensors sha256 " + ModelDirectory.sha256(weights)
          : "sharded weights";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Removes {@code dir} and everything below it. */
  public static void deleteRecursively(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}
