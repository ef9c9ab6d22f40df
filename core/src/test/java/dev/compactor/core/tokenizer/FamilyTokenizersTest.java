package dev.compactor.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/**
 * Hand-built tokenizer.json files in the shape Llama 3, Qwen2 and Llama 2 / Mistral ship (see
 * src/test/resources/tokenizers/). Python's tokenizers package is not installed here, so the
 * expected ids were worked out by hand from the algorithm: the split regex first, then BPE merges
 * by rank, then byte fallback; the comments give each step.
 */
class FamilyTokenizersTest {

  private static Path dir(String name) throws URISyntaxException {
    return Path.of(FamilyTokenizersTest.class.getResource("/tokenizers/" + name).toURI());
  }

  @Test
  void llama3SplitsDigitsInRunsOfThreeAndMergesByRank() throws Exception {
    try (TextTokenizer tok = Tokenizers.forModel(dir("llama3"))) {
      // "Hello" | " world" | "'s" | " " | "123" | "4"; "Ġworld" merges to Ġwor l d, "123" to one
      // token. Without the split "1234" would merge to 12 34 (ids 22, 24) instead.
      assertArrayEquals(new int[] {17, 20, 2, 7, 21, 4, 23, 13}, tok.encode("Hello world's 1234"));
      assertEquals("Hello world's 1234", tok.decode(tok.encode("Hello world's 1234")));
      // No tokenizer_config.json: BOS is the special token the TemplateProcessing puts first.
      assertEquals(OptionalInt.of(25), tok.bosId());
      assertArrayEquals(new int[] {25, 17}, tok.encodeWithBos("Hello"));
    }
  }

  @Test
  void addedTokensAreMatchedBeforeBpeAndDecodeKeepsThemOnlyWhenAsked() throws Exception {
    try (TextTokenizer tok = Tokenizers.forModel(dir("llama3"))) {
      assertArrayEquals(new int[] {26, 17}, tok.encode("<|eot_id|>Hello"));
      assertEquals("Hello", tok.decode(new int[] {25, 17}));
      assertEquals("<|begin_of_text|>Hello", tok.decode(new int[] {25, 17}, false));
    }
  }

  @Test
  void qwen2SplitsEveryDigitAndHasNoBos() throws Exception {
    try (TextTokenizer tok = Tokenizers.forModel(dir("qwen2"))) {
      assertArrayEquals(
          new int[] {17, 20, 2, 7, 21, 4, 10, 11, 12, 13}, tok.encode("Hello world's 1234"));
      // tokenizer_config.json says bos_token: null, so nothing is prepended despite the template.
      assertEquals(OptionalInt.empty(), tok.bosId());
      assertEquals(OptionalInt.of(26), tok.eosId());
      assertArrayEquals(new int[] {17}, tok.encodeWithBos("Hello"));
    }
  }

  @Test
  void sentencePieceStyleBpeUsesMetaspaceAndByteFallback() throws Exception {
    try (TextTokenizer tok = Tokenizers.forModel(dir("llama2"))) {
      // "hi!" -> "▁hi!" -> ▁h i ! -> ▁hi ! ; "!" is not in the vocab -> <0x21>.
      assertArrayEquals(new int[] {8, 3}, tok.encode("hi!"));
      // "é" is not in the vocab -> its UTF-8 bytes <0xC3> <0xA9>.
      assertArrayEquals(new int[] {7, 9, 10}, tok.encode("hé"));
      assertEquals("hi!", tok.decode(new int[] {8, 3}));
      assertEquals("hé", tok.decode(new int[] {7, 9, 10}));
      assertEquals(OptionalInt.of(1), tok.bosId());
      assertEquals(OptionalInt.of(2), tok.eosId());
      assertArrayEquals(new int[] {1, 8, 3}, tok.encodeWithBos("hi!"));
      assertTrue(tok.decode(new int[] {1, 8}, false).contains("<s>"));
      assertEquals("hi", tok.decode(new int[] {1, 8}));
    }
  }

  @Test
  void byteTokenizerKeepsEndOfTextOnlyWhenAsked() {
    ByteTokenizer tok = new ByteTokenizer();
    assertEquals("a<|endoftext|>", tok.decode(new int[] {'a', 256}, false));
    assertEquals("a", tok.decode(new int[] {'a', 256}, true));
  }
}
