package dev.compactor.core.data.clean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DataCleanerTest {

  private static final String A = FiltersTest.ENGLISH;
  private static final String B =
      "The Council has not yet taken a position on the proposal, and we should ask the"
          + " Commission to tell this House when it will present the figures that we have been"
          + " waiting for since the spring.";
  private static final String C =
      "It is for this reason that my group will vote in favour of the amendments which have been"
          + " tabled in committee, and I hope that the other groups will do the same on Thursday.";

  private static List<Document> docs(String... texts) {
    List<Document> out = new ArrayList<>();
    for (String t : texts) {
      out.add(Document.of(out.size(), t));
    }
    return out;
  }

  private static CleanSpec all() {
    return CleanSpec.none()
        .withDedup(true, true)
        .withLength(new LengthFilter(0, 0, 5, 0))
        .withLanguage(LanguageFilter.english())
        .withRepetition(RepetitionFilter.gopher());
  }

  @Test
  void countsEveryDropUnderItsFirstReason() {
    String nearA = A.replace("been done.", "been done so far."); // Jaccard ~0.93
    List<Document> in =
        docs(
            A, // 0 kept
            "Thank you.", // 1 too short
            B, // 2 kept
            A.toUpperCase(java.util.Locale.ROOT), // 3 exact duplicate of 0
            "Herr Präsident, meine Damen und Herren, wir haben heute über den Bericht zu"
                + " entscheiden.", // 4 not English
            nearA, // 5 near duplicate of 0
            "Subscribe to our newsletter\nSubscribe to our newsletter\nSubscribe to our"
                + " newsletter for the news", // 6 repetition
            C, // 7 kept
            A); // 8 exact duplicate of 0
    DataCleaner.Result r = DataCleaner.clean(in, all(), null);
    assertEquals(List.of(0, 2, 7), r.kept().stream().map(Document::index).toList());
    CleanReport rep = r.report();
    assertEquals(9, rep.input());
    assertEquals(3, rep.kept());
    assertEquals(
        Map.of(
            "length.too_short", 1,
            "language.not_en", 1,
            "repetition.dup_line_frac", 1,
            "dedup.exact", 2,
            "dedup.minhash", 1),
        rep.dropped());
    assertEquals(
        List.of(
            "length.too_short",
            "language.not_en",
            "repetition.dup_line_frac",
            "dedup.exact",
            "dedup.minhash"),
        List.copyOf(rep.dropped().keySet()));
    assertEquals(2, rep.clusterCount());
    assertEquals(
        new CleanReport.Cluster(0, 3, "exact", CleanReport.preview(A)), rep.clusters().get(0));
    assertEquals("duplicate of #0", rep.examples().get("dedup.exact").get(0).detail());
    assertTrue(
        rep.examples().get("dedup.minhash").get(0).detail().startsWith("duplicate of #0 (est."),
        rep.examples().toString());
    assertEquals(new LshBands(9, 13), rep.bands());

    ObjectNode json = rep.toJson(new ObjectMapper());
    assertEquals(6, json.get("dropped").asInt());
    assertEquals(2, json.get("dropped_by_reason").get("dedup.exact").asInt());
    assertEquals(1, json.get("examples").get("length.too_short").get(0).get("index").asInt());
    assertEquals(9, json.get("lsh").get("bands").asInt());
    String text = rep.toText();
    assertTrue(text.startsWith("documents: 9 read, 3 kept, 6 dropped (66.7 %)"), text);
    assertTrue(text.contains("#1 (2 words < 5): Thank you."), text);
  }

  @Test
  void examplesAreCappedAndTruncated() {
    List<String> shorts = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      shorts.add("short " + i);
    }
    shorts.add("x".repeat(300) + " y");
    CleanSpec spec = CleanSpec.none().withLength(new LengthFilter(0, 0, 3, 0));
    CleanReport rep = DataCleaner.clean(docs(shorts.toArray(String[]::new)), spec, null).report();
    assertEquals(Map.of("length.too_short", 6), rep.dropped());
    assertEquals(CleanReport.EXAMPLES, rep.examples().get("length.too_short").size());
    assertEquals(CleanReport.PREVIEW + 1, CleanReport.preview("x".repeat(300)).length());
  }

  @Test
  void perplexityRunsLastOnTheSurvivors() {
    CleanSpec spec =
        CleanSpec.none()
            .withDedup(true, false)
            .withPerplexity(new PerplexityFilter(Double.NaN, Double.NaN, 50));
    List<String> scored = new ArrayList<>();
    PerplexityFilter.Scorer scorer =
        t -> {
          scored.add(t);
          return t.startsWith("bad") ? 100 : 10;
        };
    DataCleaner.Result r = DataCleaner.clean(docs("good one", "good one", "bad one"), spec, scorer);
    assertEquals(List.of("good one", "bad one"), scored); // the duplicate was never scored
    assertEquals(Map.of("dedup.exact", 1, "perplexity.high", 1), r.report().dropped());
    assertThrows(IllegalArgumentException.class, () -> DataCleaner.clean(docs("x"), spec, null));
  }

  @Test
  void filesReadAndWriteInTheirOwnLayout(@TempDir Path dir) throws Exception {
    Path text = dir.resolve("in.txt");
    Files.writeString(text, "first para\nline two\n\nsecond para\n\n\nthird\n");
    DocumentFile.Contents c = DocumentFile.read(text);
    assertEquals(DocumentFile.Layout.PARAGRAPHS, c.layout());
    assertEquals(
        List.of("first para\nline two", "second para", "third"),
        c.documents().stream().map(Document::text).toList());
    Path out = dir.resolve("out.txt");
    DocumentFile.write(out, c.layout(), List.of(c.documents().get(0), c.documents().get(2)));
    assertEquals(
        List.of("first para\nline two", "third"),
        DocumentFile.read(out).documents().stream().map(Document::text).toList());

    Path jsonl = dir.resolve("in.jsonl");
    String l1 = "{\"prompt\": \"Q: 1+1?\", \"completion\": \" 2\"}";
    String l2 = "{\"text\": \"plain\", \"id\": 7}";
    Files.writeString(jsonl, l1 + "\n\n" + l2 + "\n");
    DocumentFile.Contents j = DocumentFile.read(jsonl);
    assertEquals(DocumentFile.Layout.JSONL, j.layout());
    assertEquals(
        List.of("Q: 1+1?\n 2", "plain"), j.documents().stream().map(Document::text).toList());
    Path jout = dir.resolve("out.jsonl");
    DocumentFile.write(jout, j.layout(), j.documents());
    assertEquals(l1 + "\n" + l2 + "\n", Files.readString(jout));
    Files.writeString(jsonl, "{\"messages\": []}\n");
    assertThrows(UnsupportedOperationException.class, () -> DocumentFile.read(jsonl));
    Files.writeString(jsonl, "{\"prompt\": 3, \"completion\": \"x\"}\n");
    assertThrows(IllegalArgumentException.class, () -> DocumentFile.read(jsonl));
  }
}
