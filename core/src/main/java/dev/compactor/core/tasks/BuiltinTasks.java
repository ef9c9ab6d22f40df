package dev.compactor.core.tasks;

import dev.compactor.core.data.Corpus;
import java.io.IOException;
import java.util.ArrayList;
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
 * <p>At most {@link #PER_SPEECH} documents come from one speech.
 */
public final class BuiltinTasks {

  public static final String NEXT_SENTENCE = "europarl-next-sentence";
  public static final String LAST_WORD = "europarl-last-word";

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
}
