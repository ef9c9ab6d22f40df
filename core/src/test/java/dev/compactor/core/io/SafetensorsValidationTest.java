package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every header rule of {@link SafetensorsFile}, each with the field and message it reports. */
class SafetensorsValidationTest {

  @TempDir Path tmp;
  private int counter;

  private static String entry(String name, String dtype, String shape, String offsets) {
    return "\""
        + name
        + "\":{\"dtype\":\""
        + dtype
        + "\",\"shape\":"
        + shape
        + ",\"data_offsets\":"
        + offsets
        + "}";
  }

  private SafetensorsFormatException reject(byte[] file, String field, String... fragments)
      throws IOException {
    Path f = StFiles.write(tmp.resolve("bad" + counter++ + ".safetensors"), file);
    SafetensorsFormatException e =
        assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(f).close());
    assertEquals(field, e.field(), e.getMessage());
    assertEquals(f, e.file());
    for (String fragment : fragments) {
      assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' in: " + e.getMessage());
    }
    assertTrue(e.getMessage().contains("expected " + e.expected() + ", found " + e.found()));
    return e;
  }

  private SafetensorsFormatException reject(
      String header, int dataBytes, String field, String... fragments) throws IOException {
    return reject(StFiles.bytes(header, new byte[dataBytes]), field, fragments);
  }

  @Test
  void headerLengthField() throws IOException {
    reject(new byte[5], "header length", "at least 8 bytes", "found 5 bytes");
    byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
    reject(StFiles.bytes(0, h, new byte[0]), "header length", "found 0");
    reject(StFiles.bytes(1, h, new byte[0]), "header length", "found 1");
    reject(StFiles.bytes(3, h, new byte[0]), "header length", "2 ≤ N ≤ 2", "found 3");
    reject(StFiles.bytes(-8, h, new byte[0]), "header length", "18446744073709551608");
  }

  @Test
  void headerLengthAboveTheCapIsRefusedWithoutReadingIt() throws IOException {
    Path f = tmp.resolve("huge.safetensors");
    long n = SafetensorsFile.MAX_HEADER_BYTES + 1;
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(8 + n + 16); // sparse: costs no disk
      raf.write(StFiles.bytes(n, new byte[0], new byte[0]));
    }
    SafetensorsFormatException e =
        assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(f).close());
    assertEquals("header length", e.field());
    assertTrue(e.getMessage().contains("header limit " + SafetensorsFile.MAX_HEADER_BYTES));
  }

  @Test
  void headerTextAndJsonShape() throws IOException {
    byte[] notUtf8 = {'{', '"', (byte) 0xc3, (byte) 0x28, '"', ':', '1', '}'};
    reject(StFiles.bytes(notUtf8.length, notUtf8, new byte[0]), "header", "UTF-8");
    reject("[1,2]", 0, "header", "starting with '{'", "found \"[1,2]\"");
    reject(" {}", 0, "header", "starting with '{'");
    reject("{\"a\":", 0, "header", "well-formed JSON");
    reject("{}{}", 0, "header", "nothing after the closing '}'");
    reject("{} x", 0, "header", "well-formed JSON");
    reject(
        "{\"__metadata__\":{},\"__metadata__\":{}}",
        0,
        "header",
        "Duplicate field",
        "at character 33");
    reject("{" + entry("t", "F32", "[[1]]", "[0,4]") + "}", 4, "header", "nesting depth");
    reject("{\"t\":[1]}", 0, "t", "an object {dtype, shape, data_offsets}", "found an array");
  }

  @Test
  void metadataMustBeStringToString() throws IOException {
    reject("{\"__metadata__\":[\"a\"]}", 0, "__metadata__", "found an array");
    reject("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__.k", "a string value", "number 1");
    reject("{\"__metadata__\":{\"k\":null}}", 0, "__metadata__.k", "found null");
  }

  @Test
  void tensorNames() throws IOException {
    reject("{" + entry("", "F32", "[]", "[0,4]") + "}", 4, "tensor name", "non-empty");
    reject(
        "{" + entry("x".repeat(1025), "F32", "[]", "[0,4]") + "}",
        4,
        "tensor name",
        "at most 1024 characters",
        "1025 characters");
    reject("{" + entry("a\\u0007b", "F32", "[]", "[0,4]") + "}", 4, "tensor name", "U+0007");
    // Jackson refuses lone surrogates in names itself.
    reject("{" + entry("a\\udc00b", "F32", "[]", "[0,4]") + "}", 4, "header", "low surrogate");
  }

  @Test
  void dtypeWhitelist() throws IOException {
    reject(
        "{" + entry("t", "F8_E4M3", "[1]", "[0,1]") + "}",
        1,
        "t.dtype",
        "one of F64, F32, F16, BF16",
        "found string \"F8_E4M3\"");
    reject("{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "t.dtype", "number 4");
  }

  @Test
  void shapes() throws IOException {
    reject("{" + entry("t", "F32", "[-1]", "[0,4]") + "}", 4, "t.shape", "element 0 = -1");
    reject("{" + entry("t", "F32", "[1.5]", "[0,4]") + "}", 4, "t.shape", "number 1.5");
    reject("{" + entry("t", "F32", "[\"2\"]", "[0,8]") + "}", 8, "t.shape", "string \"2\"");
    reject(
        "{" + entry("t", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") + "}",
        4,
        "t.shape",
        "at most 8",
        "more than 8 elements");
    reject("{" + entry("t", "F32", "[99999999999999999999]", "[0,4]") + "}", 4, "t.shape");
    reject(
        "{" + entry("t", "F32", "[4294967296,4294967296]", "[0,4]") + "}",
        4,
        "t.shape",
        "fits in 63 bits",
        "overflows");
    reject(
        "{" + entry("t", "F64", "[2305843009213693952]", "[0,4]") + "}",
        4,
        "t.shape",
        "byte length that fits in 63 bits");
    reject("{" + entry("t", "F32", "3", "[0,4]") + "}", 4, "t.shape", "found number 3");
  }

  @Test
  void dataOffsets() throws IOException {
    reject(
        "{" + entry("t", "F32", "[1]", "[4,0]") + "}",
        4,
        "t.data_offsets",
        "0 ≤ begin ≤ end ≤ 4",
        "found [4, 0]");
    reject("{" + entry("t", "F32", "[1]", "[0,8]") + "}", 4, "t.data_offsets", "found [0, 8]");
    reject(
        "{" + entry("t", "F32", "[1]", "[0,4,8]") + "}",
        8,
        "t.data_offsets",
        "an array of 2 non-negative integers",
        "more than 2 elements");
    reject("{" + entry("t", "F32", "[1]", "[0]") + "}", 4, "t.data_offsets", "found 1 elements");
    reject("{" + entry("t", "F32", "[1]", "[-4,0]") + "}", 4, "t.data_offsets", "= -4");
    reject(
        "{" + entry("t", "F32", "[3]", "[0,8]") + "}",
        8,
        "t.data_offsets",
        "a byte length of 12 (3 elements of F32 × 4 bytes for shape [3])",
        "found 8 bytes");
  }

  @Test
  void entryKeys() throws IOException {
    reject(
        "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}",
        4,
        "t",
        "only the keys dtype, shape, data_offsets",
        "key \"x\"");
    reject("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "t.shape", "no such key");
    reject("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "t.data_offsets", "no such key");
  }

  @Test
  void tensorsMustTileTheDataSection() throws IOException {
    String a = entry("a", "F32", "[2]", "[0,8]");
    reject(
        "{" + a + "," + entry("b", "F32", "[1]", "[4,8]") + "}",
        8,
        "b.data_offsets",
        "no overlap with a [0, 8)",
        "found [4, 8)");
    reject(
        "{" + a + "," + entry("b", "F32", "[1]", "[12,16]") + "}",
        16,
        "data section",
        "a hole [8, 12) before b");
    reject("{" + entry("b", "F32", "[1]", "[4,8]") + "}", 8, "data section", "hole [0, 4)");
    reject("{" + a + "}", 11, "data section", "3 trailing bytes after the last tensor");
    reject("{}", 1, "data section", "1 trailing bytes");
  }

  @Test
  void validEdgeCasesAreAccepted() throws IOException {
    String header =
        "{\"__metadata__\":{},"
            + entry("z0", "F32", "[0]", "[0,0]")
            + ","
            + entry("z1", "BF16", "[2,0]", "[0,0]")
            + ","
            + entry("a", "U8", "[3]", "[0,3]")
            + ","
            + entry("b", "BOOL", "[1]", "[3,4]")
            + "}    ";
    Path f = StFiles.write(tmp.resolve("ok.safetensors"), StFiles.bytes(header, new byte[4]));
    try (SafetensorsFile st = SafetensorsFile.open(f)) {
      assertEquals(4, st.names().size());
      assertEquals(java.util.List.of("z0", "z1", "a", "b"), st.names());
    }
  }
}
