package dev.compactor.core.data.clean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.tiny.TinyReferenceModel;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The perplexity filter on the shipped tiny model (trained on Europarl English). */
class ModelPerplexityScorerTest {

  @Test
  void gibberishScoresWorseThanEnglishAndIsDropped() throws Exception {
    SplittableRandom r = new SplittableRandom(1);
    StringBuilder noise = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      noise.append((char) ('!' + r.nextInt(90)));
    }
    String english = FiltersTest.ENGLISH;
    try (ModelPerplexityScorer s = ModelPerplexityScorer.open(TinyReferenceModel.shipped())) {
      double pe = s.perplexity(english);
      double pn = s.perplexity(noise.toString());
      assertTrue(pe > 1 && pe < 20, "English ppl " + pe);
      assertTrue(pn > 5 * pe, "noise ppl " + pn + " vs English " + pe);
      assertEquals(Double.NaN, s.perplexity(""));
      // longer than the context (256): scored in disjoint windows, still finite
      double pl = s.perplexity((english + " ").repeat(5));
      assertTrue(pl > 1 && pl < pe, "repeated English ppl " + pl);
      PerplexityFilter.Result res =
          new PerplexityFilter(Double.NaN, Double.NaN, 5 * pe)
              .apply(List.of(english, noise.toString()), s);
      assertEquals(List.of(1), List.copyOf(res.drops().keySet()));
    }
  }
}
