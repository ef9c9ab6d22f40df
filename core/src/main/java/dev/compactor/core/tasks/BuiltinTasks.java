package dev.compactor.core.tasks;

import dev.compactor.core.data.Corpus;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * Tasks built from the test split of the bundled English Europarl text (documents no training or
 * calibration reads), deterministic for a seed. They are what they say, not copies of published
 * benchmarks:
 *
 * <ul>
 *   <li>{@code europarl-next-sentence} (multiple choice, 4 choices): a sentence as context; the
 *       sentence that follows it in the same speech against three sentences of similar length (0.67
 *       to 1.5 times) from other speeches. Chance is 25 %.
 *   <li>{@code europarl-last-word} (continuation, LAMBADA-style): a sentence of at least ten words
 *       without its last word; right when greedy decoding gives exactly that word.
 * </ul>
 *
 * <p>{@code europarl-phrase} (continuation) is built for the recovery table's task-distillation
 * comparison, where the two above are too hard for the 6 M-parameter reference models (the deep
 * teacher scores 6 % on {@code europarl-last-word}): the {@link #PHRASES} most frequent word
 * trigrams of the <em>training</em> split whose last word has at least four letters ("the European
 * Union" counts, "on behalf of" does not); a document is a sentence cut after the trigram's first
 * two words, right when greedy decoding gives the third. It is not in {@link #NAMES} (the {@code
 * tasks} command's defaults).
 *
 * <p>At most {@link #PER_SPEECH} documents come from one speech.
 */
public final class BuiltinTasks {

  public static final String NEXT_SENTENCE = "europarl-next-sentence";
  public static final String LAST_WORD = "europarl-last-word";

  public static final String PHRASE = "europarl-phrase";

  /** How many frequent trigrams {@code europarl-phrase} completes. */
  static final int PHRASES = 100;

  static final int PHRASE_MIN_WORDS = 5;
  static final int PHRASE_MAX_CHARS = 160;

  private static final Pattern WORD = Pattern.compile("[A-Za-z]+");

  /** The trigrams, counted once per JVM (a pass over the whole training split). */
  private static volatile List<String> trigramCache;

  /** Every built-in task's name. */
  public static final List<String> NAMES = List.of(NEXT_SENTENCE, LAST_WORD);

  private static final Pattern SENTENCE_END = Pattern.compile("(?<=[.!?])\\s+(?=[A-Z])");

  /** Documents taken from one speech at most, so that they spread over many speakers and topics. */
  static final int PER_SPEECH = 4;

  private static final Pattern LAST_WORD_END = Pattern.compile("^(.*\\S)\\s+([A-Za-z]{3,})\\.$");

  private BuiltinTasks() {}

  /** Up to {@code limit} documents of the task {@code name}. */
  public static List<TaskDoc> build(String name, int limit, long seed) throws IOException {
    List<String> docs = Corpus.europarlEnglish().testDocuments();
    return switch (name) {
      case NEXT_SENTENCE -> nextSentence(docs, limit, seed);
      case LAST_WORD -> lastWord(docs, limit);
      case PHRASE -> phrase(docs, limit);
      default ->
          throw new IllegalArgumentException(
              "unknown built-in task '" + name + "'; expected one of " + NAMES);
    };
  }

  /**
   * Up to {@code limit} documents of the task {@code name} built the same way from the
   * <em>training</em> split, as training data for task distillation: no document shares a speech
   * with {@link #build}'s test-split documents.
   */
  public static List<TaskDoc> buildFromTraining(String name, int limit, long seed)
      throws IOException {
    List<String> docs = Corpus.europarlEnglish().trainDocuments();
    return switch (name) {
      case NEXT_SENTENCE -> nextSentence(docs, limit, seed);
      case LAST_WORD -> lastWord(docs, limit);
      case PHRASE -> phrase(docs, limit);
      default ->
          throw new IllegalArgumentException(
              "unknown built-in task '" + name + "'; expected one of " + NAMES);
    };
  }

  static List<List<String>> sentences(List<String> docs) {
    List<List<String>> out = new ArrayList<>();
    for (String d : docs) {
      List<String> s = new ArrayList<>();
      for (String part : SENTENCE_END.split(d.strip())) {
        String t = part.strip();
        if (!t.isEmpty()) {
          s.add(t);
        }
      }
      out.add(s);
    }
    return out;
  }

  private static boolean usable(String s) {
    return s.length() >= 30 && s.length() <= 200;
  }

  static List<TaskDoc> nextSentence(List<String> docs, int limit, long seed) {
    List<List<String>> byDoc = sentences(docs);
    List<int[]> pool = new ArrayList<>(); // {doc, sentence}
    for (int d = 0; d < byDoc.size(); d++) {
      for (int i = 0; i < byDoc.get(d).size(); i++) {
        if (usable(byDoc.get(d).get(i))) {
          pool.add(new int[] {d, i});
        }
      }
    }
    SplittableRandom random = new SplittableRandom(seed);
    List<TaskDoc> out = new ArrayList<>();
    for (int d = 0; d < byDoc.size() && out.size() < limit; d++) {
      List<String> s = byDoc.get(d);
      int taken = 0;
      for (int i = 0; i + 1 < s.size() && taken < PER_SPEECH && out.size() < limit; i++) {
        String context = s.get(i);
        String next = s.get(i + 1);
        if (!usable(context) || !usable(next)) {
          continue;
        }
        List<String> choices = new ArrayList<>();
        choices.add(next);
        for (int tries = 0; choices.size() < 4 && tries < 10_000; tries++) {
          int[] c = pool.get(random.nextInt(pool.size()));
          String candidate = byDoc.get(c[0]).get(c[1]);
          double ratio = (double) candidate.length() / next.length();
          if (c[0] != d && ratio > 0.67 && ratio < 1.5 && !choices.contains(candidate)) {
            choices.add(candidate);
          }
        }
        if (choices.size() < 4) {
          continue;
        }
        Collections.shuffle(choices, new java.util.Random(random.nextLong()));
        out.add(
            new TaskDoc.MultipleChoice(
                NEXT_SENTENCE + "-" + out.size(), context, choices, choices.indexOf(next), " "));
        taken++;
        i++; // the next pair would reuse this answer as its context
      }
    }
    return out;
  }

  static List<TaskDoc> lastWord(List<String> docs, int limit) {
    List<TaskDoc> out = new ArrayList<>();
    for (List<String> s : sentences(docs)) {
      int taken = 0;
      for (String sentence : s) {
        var m = LAST_WORD_END.matcher(sentence);
        if (taken < PER_SPEECH
            && out.size() < limit
            && sentence.split("\\s+").length >= 10
            && sentence.length() <= 240
            && m.matches()) {
          out.add(
              new TaskDoc.Continuation(
                  String.format(Locale.ROOT, "%s-%d", LAST_WORD, out.size()),
                  m.group(1),
                  " " + m.group(2)));
          taken++;
        }
      }
      if (out.size() >= limit) {
        break;
      }
    }
    return out;
  }

  /** The {@link #PHRASES} most frequent trigrams of the training split, as "w1 w2 w3". */
  static List<String> frequentTrigrams() throws IOException {
    if (trigramCache == null) {
      trigramCache = countTrigrams();
    }
    return trigramCache;
  }

  private static List<String> countTrigrams() throws IOException {
    java.util.Map<String, Integer> counts = new java.util.HashMap<>();
    for (List<String> doc : sentences(Corpus.europarlEnglish().trainDocuments())) {
      for (String sentence : doc) {
        String[] w = sentence.split(" ");
        for (int i = 0; i + 2 < w.length; i++) {
          if (WORD.matcher(w[i]).matches()
              && WORD.matcher(w[i + 1]).matches()
              && WORD.matcher(w[i + 2]).matches()
              && w[i + 2].length() >= 4) {
            counts.merge(w[i] + " " + w[i + 1] + " " + w[i + 2], 1, Integer::sum);
          }
        }
      }
    }
    List<java.util.Map.Entry<String, Integer>> e = new ArrayList<>(counts.entrySet());
    // by count, then alphabetically: the same list on every machine
    e.sort(
        java.util.Map.Entry.<String, Integer>comparingByValue()
            .reversed()
            .thenComparing(java.util.Map.Entry.comparingByKey()));
    return e.stream().limit(PHRASES).map(java.util.Map.Entry::getKey).toList();
  }

  static List<TaskDoc> phrase(List<String> docs, int limit) throws IOException {
    java.util.Set<String> trigrams = new java.util.HashSet<>(frequentTrigrams());
    List<TaskDoc> out = new ArrayList<>();
    for (List<String> s : sentences(docs)) {
      int taken = 0;
      for (String sentence : s) {
        if (taken >= PER_SPEECH || out.size() >= limit) {
          break;
        }
        String[] w = sentence.split(" ");
        int at = -1;
        for (int i = PHRASE_MIN_WORDS - 2; i + 2 < w.length && at < 0; i++) {
          if (trigrams.contains(w[i] + " " + w[i + 1] + " " + w[i + 2])) {
            at = i;
          }
        }
        String context = at < 0 ? "" : String.join(" ", Arrays.copyOfRange(w, 0, at + 2));
        if (at >= 0 && context.length() <= PHRASE_MAX_CHARS) {
          out.add(
              new TaskDoc.Continuation(
                  String.format(Locale.ROOT, "%s-%d", PHRASE, out.size()),
                  context,
                  " " + w[at + 2]));
          taken++;
        }
      }
      if (out.size() >= limit) {
        break;
      }
    }
    return out;
  }
}
