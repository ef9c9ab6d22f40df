package dev.compactor.core.cascade;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Cache hit rates on constructed logs, and the Zipf query log's shape. */
class ResponseCacheTest {

  @Test
  void exactAndNormalisedHitsOnAConstructedLog() {
    List<String> log =
        List.of("What is it?", "what is  it? ", "Other", "What is it?", "ｗｈａｔ is it?", "x");
    ResponseCache.Replay exact = ResponseCache.replay(log, ResponseCache.Key.EXACT);
    assertEquals(1, exact.hits());
    assertEquals(5, exact.distinctKeys());
    // case, whitespace and the full-width letters (NFKC) all fold into "what is it?"
    ResponseCache.Replay norm = ResponseCache.replay(log, ResponseCache.Key.NORMALISED);
    assertEquals(3, norm.hits());
    assertEquals(0.5, norm.hitRate(), 1e-12);
    assertEquals(3, norm.distinctKeys());
  }

  @Test
  void zipfLogIsSeededAndSkewedAndItsVariantsNormaliseBack() {
    List<String> prompts = List.of("Alpha one", "Beta two", "Gamma three", "Delta four");
    List<String> a = QueryLog.zipf(prompts, 4000, 1.0, 0.3, 7);
    assertEquals(a, QueryLog.zipf(prompts, 4000, 1.0, 0.3, 7));
    long first = a.stream().filter(q -> ResponseCache.normalise(q).equals("alpha one")).count();
    long last = a.stream().filter(q -> ResponseCache.normalise(q).equals("delta four")).count();
    // weights 1, 1/2, 1/3, 1/4 of 25/12: 48 % and 12 %
    assertEquals(0.48, first / 4000.0, 0.03);
    assertEquals(0.12, last / 4000.0, 0.02);
    // every query is one of 4 prompts once normalised: all but 4 are hits
    assertEquals(3996, ResponseCache.replay(a, ResponseCache.Key.NORMALISED).hits());
    assertTrue(ResponseCache.replay(a, ResponseCache.Key.EXACT).distinctKeys() > 4);
  }

  @Test
  void uniformLogOverManyPromptsHasTheBirthdayRepeatRate() {
    List<String> prompts = new java.util.ArrayList<>();
    for (int i = 0; i < 1000; i++) {
      prompts.add("prompt " + i);
    }
    // exponent 0 = uniform: n draws over N prompts leave N (1 - (1 - 1/N)^n) distinct
    List<String> log = QueryLog.zipf(prompts, 1000, 0, 0, 3);
    double expectedDistinct = 1000 * (1 - Math.pow(1 - 1e-3, 1000));
    ResponseCache.Replay r = ResponseCache.replay(log, ResponseCache.Key.EXACT);
    assertEquals(expectedDistinct, r.distinctKeys(), 30);
  }
}
