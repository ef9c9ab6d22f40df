package dev.compactor.core.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.tokenizer.ByteTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CorpusTest {

  @Test
  void europarlEnglishIsSizeableEnglishAndSplitDisjointly() throws IOException {
    Corpus c = Corpus.europarlEnglish();
    int total =
        c.trainDocuments().size() + c.validationDocuments().size() + c.testDocuments().size();
    assertTrue(total > 1000, "English documents: " + total);
    assertTrue(c.trainText().length() > 1_000_000, "train chars: " + c.trainText().length());
    assertTrue(c.validationDocuments().size() > 30);
    assertTrue(c.testDocuments().size() > 30);
    double trainShare = (double) c.trainDocuments().size() / total;
    assertTrue(trainShare > 0.85 && trainShare < 0.95, "train share " + trainShare);
    Set<String> train = new HashSet<>(c.trainDocuments());
    for (String d : c.validationDocuments()) {
      assertTrue(!train.contains(d));
      assertTrue(EnglishDetector.isEnglish(d));
    }
    assertTrue(c.testDocuments().stream().noneMatch(train::contains));
    assertTrue(c.validationText().contains(" the "));
  }

  @Test
  void textFileSplitsByBlankLinesAndIsDeterministic(@TempDir Path dir) throws IOException {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      sb.append("Paragraph number ").append(i).append(" line one\nline two\n\n");
    }
    Path file = dir.resolve("text.txt");
    Files.writeString(file, sb);
    Corpus a = Corpus.fromTextFile(file);
    Corpus b = Corpus.fromTextFile(file);
    assertEquals(
        200, a.trainDocuments().size() + a.validationDocuments().size() + a.testDocuments().size());
    assertEquals(a.validationDocuments(), b.validationDocuments());
    assertTrue(a.trainDocuments().get(0).contains("\n"), "a paragraph keeps its lines");
    assertThrows(IOException.class, () -> Corpus.fromTextFile(dir.resolve("missing.txt")));
  }

  @Test
  void calibrationSamplesAreSeededSlicesOfTrainingTokens() throws IOException {
    Corpus c = Corpus.europarlEnglish();
    ByteTokenizer tok = new ByteTokenizer();
    List<int[]> a = c.calibrationSamples(tok, 4, 64, 7);
    List<int[]> b = c.calibrationSamples(tok, 4, 64, 7);
    assertEquals(4, a.size());
    for (int i = 0; i < 4; i++) {
      assertEquals(64, a.get(i).length);
      assertArrayEquals(a.get(i), b.get(i));
      assertTrue(c.trainText().contains(tok.decode(a.get(i)).substring(8, 40)));
    }
  }
}
