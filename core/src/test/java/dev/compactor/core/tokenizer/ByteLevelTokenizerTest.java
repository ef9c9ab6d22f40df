package dev.compactor.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.CheckpointFormatException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ByteLevelTokenizerTest {

  private static final List<String> TEXTS =
      List.of(
          "Hello, world!",
          "  leading spaces\tand tabs\nand newlines\r\n",
          "Grüße aus München – ½ € · naïve café",
          "emoji 🙂 and 中文 and \u0000 control \u007f bytes",
          "Mr President, ladies and gentlemen, I'd like to thank the rapporteur.",
          "");

  @Test
  void byteTokenizerRoundTripsUtf8() {
    ByteTokenizer tok = new ByteTokenizer();
    for (String text : TEXTS) {
      int[] ids = tok.encode(text);
      assertEquals(text.getBytes(StandardCharsets.UTF_8).length, ids.length);
      assertEquals(text, tok.decode(ids));
    }
    assertEquals(257, tok.vocabSize());
    assertEquals(OptionalInt.of(256), tok.eosId());
    assertEquals("ab", tok.decode(new int[] {'a', ByteTokenizer.END_OF_TEXT, 'b'}));
    assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {257}));
  }

  @Test
  void byteToUnicodeMatchesGpt2Table() {
    char[] map = ByteLevelTokenizerFiles.byteToUnicode();
    assertEquals('\u0120', map[' ']); // 'Ġ'
    assertEquals('\u010A', map['\n']); // 'Ċ'
    assertEquals('\u0100', map[0]);
    assertEquals('A', map['A']);
    assertEquals('\u0143', map[0xAD]); // soft hyphen is the last non-printable byte remapped
    assertEquals(256, new String(map).chars().distinct().count());
  }

  @Test
  void huggingFaceTokenizerOnWrittenFileAgreesWithByteTokenizer(@TempDir Path dir)
      throws Exception {
    ByteLevelTokenizerFiles.write(dir, 256);
    ByteTokenizer bytes = new ByteTokenizer();
    StringBuilder longText = new StringBuilder();
    for (int i = 0; i < 400; i++) {
      longText.append(TEXTS.get(i % TEXTS.size())).append(' ').append(i);
    }
    try (TextTokenizer hf = Tokenizers.forModel(dir)) {
      assertTrue(hf instanceof HfTokenizer);
      assertEquals(257, hf.vocabSize());
      assertEquals(OptionalInt.of(256), hf.bosId());
      assertEquals(OptionalInt.of(256), hf.eosId());
      for (String text : TEXTS) {
        assertArrayEquals(bytes.encode(text), hf.encode(text), text);
        assertEquals(text, hf.decode(bytes.encode(text)));
      }
      String big = longText.toString();
      assertTrue(big.length() > 10_000);
      assertArrayEquals(bytes.encode(big), hf.encode(big), "long text must not be truncated");
      assertArrayEquals(new int[] {'a', 256, 'b'}, hf.encode("a<|endoftext|>b"));
      assertEquals("ab", hf.decode(new int[] {'a', 256, 'b'}));
    }
  }

  @Test
  void missingTokenizerIsATypedError(@TempDir Path dir) throws Exception {
    CheckpointFormatException e =
        assertThrows(CheckpointFormatException.class, () -> Tokenizers.forModel(dir));
    assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    Files.writeString(dir.resolve("tokenizer.json"), "{not json");
    assertThrows(CheckpointFormatException.class, () -> Tokenizers.forModel(dir));
  }
}
