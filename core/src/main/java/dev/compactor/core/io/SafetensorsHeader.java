package dev.compactor.core.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parsed and fully validated JSON header of one safetensors file: the tensor entries sorted by
 * their position in the data section, and the optional {@code __metadata__} map.
 *
 * <p>Validation is field by field with a {@link SafetensorsFormatException} naming the field, what
 * was expected and what was found. Rules (the safetensors spec plus limits that protect the reader):
 * header is strict UTF-8 starting with {@code '{'}; exactly one JSON object, no duplicate keys;
 * {@code __metadata__} is an object of strings; tensor names are 1..1024 chars with no control
 * characters; each entry has exactly {@code dtype} (a {@link DType} name), {@code shape} (≤ 8
 * non-negative integers, element count fits in a long) and {@code data_offsets} ([begin, end], 0 ≤
 * begin ≤ end ≤ data size); end − begin = element count × element width; and the entries tile the
 * data section exactly: no overlap, no hole, nothing trailing.
 */
final class SafetensorsHeader {

  static final String METADATA_KEY = "__metadata__";
  static final int MAX_NAME_LENGTH = 1024;
  static final int MAX_RANK = 8;

  final List<TensorInfo> tensors;
  final Map<String, String> metadata;

  private SafetensorsHeader(List<TensorInfo> tensors, Map<String, String> metadata) {
    this.tensors = Collections.unmodifiableList(tensors);
    this.metadata = Collections.unmodifiableMap(metadata);
  }

  /** Parses and validates {@code header} (the N header bytes) against a data section size. */
  static SafetensorsHeader parse(Path file, byte[] header, long dataSize)
      throws SafetensorsFormatException {
    return new Parser(file, dataSize).parse(header);
  }

  private static final class Parser {
    private final Path file;
    private final long dataSize;
    private JsonParser p;

    Parser(Path file, long dataSize) {
      this.file = file;
      this.dataSize = dataSize;
    }

    SafetensorsHeader parse(byte[] header) throws SafetensorsFormatException {
      String json = decodeUtf8(header);
      if (json.isEmpty() || json.charAt(0) != '{') {
        throw fail("header", "JSON text starting with '{'", describeStart(json));
      }
      List<TensorInfo> tensors = new ArrayList<>();
      Map<String, String> metadata = new LinkedHashMap<>();
      try (JsonParser parser = JsonLimits.HEADER.createParser(json)) {
        p = parser;
        expect(next(), JsonToken.START_OBJECT, "header", "a JSON object");
        for (JsonToken t = next(); t != JsonToken.END_OBJECT; t = next()) {
          String key = p.currentName();
          if (METADATA_KEY.equals(key)) {
            readMetadata(metadata);
          } else {
            checkName(key);
            tensors.add(readEntry(key));
          }
        }
        JsonToken after = p.nextToken();
        if (after != null) {
          throw fail("header", "nothing after the closing '}' but spaces", describe(after));
        }
      } catch (JsonProcessingException e) {
        throw fail(
            "header",
            "well-formed JSON (no duplicate keys, nesting depth ≤ "
                + JsonLimits.HEADER_MAX_DEPTH
                + ")",
            e.getOriginalMessage()
                + (e.getLocation() == null
                    ? ""
                    : " (at character " + e.getLocation().getCharOffset() + ")"),
            e);
      } catch (SafetensorsFormatException e) {
        throw e;
      } catch (IOException e) {
        throw fail("header", "readable JSON", e.toString(), e);
      }
      tensors.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
      checkTiling(tensors);
      return new SafetensorsHeader(tensors, metadata);
    }

    private String decodeUtf8(byte[] header) throws SafetensorsFormatException {
      try {
        CharBuffer chars =
            StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(header));
        return chars.toString();
      } catch (CharacterCodingException e) {
        throw fail("header", "UTF-8 text", "bytes that are not valid UTF-8", e);
      }
    }

    private void readMetadata(Map<String, String> metadata) throws IOException {
      expect(next(), JsonToken.START_OBJECT, METADATA_KEY, "an object of string to string");
      for (JsonToken t = next(); t != JsonToken.END_OBJECT; t = next()) {
        String key = p.currentName();
        JsonToken v = next();
        if (v != JsonToken.VALUE_STRING) {
          throw fail(METADATA_KEY + "." + key, "a string value", describe(v));
        }
        metadata.put(key, p.getText());
      }
    }

    private void checkName(String name) throws SafetensorsFormatException {
      if (name.isEmpty()) {
        throw fail("tensor name", "a non-empty name", "\"\"");
      }
      if (name.length() > MAX_NAME_LENGTH) {
        throw fail(
            "tensor name",
            "at most " + MAX_NAME_LENGTH + " characters",
            name.length() + " characters (" + abbreviate(name) + ")");
      }
      for (int i = 0; i < name.length(); i++) {
        char c = name.charAt(i);
        if (Character.isISOControl(c)) {
          throw fail(
              "tensor name",
              "printable characters",
              String.format("U+%04X at index %d of %s", (int) c, i, abbreviate(name)));
        }
      }
    }

    private TensorInfo readEntry(String name) throws IOException {
      expect(next(), JsonToken.START_OBJECT, name, "an object {dtype, shape, data_offsets}");
      DType dtype = null;
      long[] shape = null;
      long[] offsets = null;
      for (JsonToken t = next(); t != JsonToken.END_OBJECT; t = next()) {
        String key = p.currentName();
        switch (key) {
          case "dtype" -> dtype = readDType(name);
          case "shape" -> shape = readLongs(name + ".shape", MAX_RANK, -1);
          case "data_offsets" -> offsets = readLongs(name + ".data_offsets", 2, 2);
          default ->
              throw fail(
                  name,
                  "only the keys dtype, shape, data_offsets",
                  "key \"" + abbreviate(key) + "\"");
        }
      }
      if (dtype == null || shape == null || offsets == null) {
        String missing = dtype == null ? "dtype" : shape == null ? "shape" : "data_offsets";
        throw fail(name + "." + missing, "a value", "no such key");
      }
      long numel = 1;
      for (long d : shape) {
        try {
          numel = Math.multiplyExact(numel, d);
        } catch (ArithmeticException e) {
          throw fail(
              name + ".shape",
              "an element count that fits in 63 bits",
              Arrays.toString(shape) + " (overflows)");
        }
      }
      long begin = offsets[0];
      long end = offsets[1];
      if (begin > end || end > dataSize) {
        throw fail(
            name + ".data_offsets",
            "[begin, end] with 0 ≤ begin ≤ end ≤ " + dataSize + " (the data section size)",
            "[" + begin + ", " + end + "]");
      }
      long wanted;
      try {
        wanted = Math.multiplyExact(numel, dtype.bytes());
      } catch (ArithmeticException e) {
        throw fail(name + ".shape", "a byte length that fits in 63 bits", Arrays.toString(shape));
      }
      if (end - begin != wanted) {
        throw fail(
            name + ".data_offsets",
            "a byte length of "
                + wanted
                + " ("
                + numel
                + " elements of "
                + dtype.safetensorsName()
                + " × "
                + dtype.bytes()
                + " bytes for shape "
                + Arrays.toString(shape)
                + ")",
            (end - begin) + " bytes ([" + begin + ", " + end + "])");
      }
      return new TensorInfo(name, dtype, shape, begin, end);
    }

    private DType readDType(String name) throws IOException {
      JsonToken t = next();
      if (t == JsonToken.VALUE_STRING) {
        String s = p.getText();
        for (DType d : DType.values()) {
          if (d.safetensorsName().equals(s)) {
            return d;
          }
        }
      }
      throw fail(name + ".dtype", "one of " + dtypeNames(), describe(t));
    }

    /** An array of non-negative integers, with at most {@code max} and exactly {@code exact}. */
    private long[] readLongs(String field, int max, int exact) throws IOException {
      String what =
          exact > 0
              ? "an array of " + exact + " non-negative integers"
              : "an array of at most " + max + " non-negative integers";
      expect(next(), JsonToken.START_ARRAY, field, what);
      long[] out = new long[max];
      int n = 0;
      for (JsonToken t = next(); t != JsonToken.END_ARRAY; t = next()) {
        if (n == max) {
          throw fail(field, what, "more than " + max + " elements");
        }
        if (t != JsonToken.VALUE_NUMBER_INT
            || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
          throw fail(field, what, "element " + n + " = " + describe(t));
        }
        long v = p.getLongValue();
        if (v < 0) {
          throw fail(field, what, "element " + n + " = " + v);
        }
        out[n++] = v;
      }
      if (exact > 0 && n != exact) {
        throw fail(field, what, n + " elements");
      }
      return Arrays.copyOf(out, n);
    }

    private void checkTiling(List<TensorInfo> sorted) throws SafetensorsFormatException {
      long cursor = 0;
      TensorInfo previous = null;
      for (TensorInfo t : sorted) {
        if (t.begin() < cursor) {
          throw fail(
              t.name() + ".data_offsets",
              "no overlap with " + previous.name() + " [" + previous.begin() + ", " + cursor + ")",
              "[" + t.begin() + ", " + t.end() + ")");
        }
        if (t.begin() > cursor) {
          throw fail(
              "data section",
              "tensors covering it without holes (next tensor at byte " + cursor + ")",
              "a hole [" + cursor + ", " + t.begin() + ") before " + t.name());
        }
        cursor = t.end();
        previous = t;
      }
      if (cursor != dataSize) {
        throw fail(
            "data section",
            "tensors covering all " + dataSize + " bytes",
            (dataSize - cursor) + " trailing bytes after the last tensor (at " + cursor + ")");
      }
    }

    /** The next token; running out inside an object or array is a truncated header. */
    private JsonToken next() throws IOException {
      JsonToken t = p.nextToken();
      if (t == null) {
        throw fail("header", "a complete JSON object", "end of header inside it");
      }
      return t;
    }

    private void expect(JsonToken actual, JsonToken wanted, String field, String what)
        throws IOException {
      if (actual != wanted) {
        throw fail(field, what, describe(actual));
      }
    }

    private String describe(JsonToken t) throws IOException {
      if (t == null) {
        return "end of header";
      }
      return switch (t) {
        case VALUE_STRING -> "string \"" + abbreviate(p.getText()) + "\"";
        case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "number " + abbreviate(p.getText());
        case START_OBJECT -> "an object";
        case START_ARRAY -> "an array";
        case VALUE_TRUE, VALUE_FALSE -> "boolean " + p.getText();
        case VALUE_NULL -> "null";
        default -> t.toString();
      };
    }

    private SafetensorsFormatException fail(String field, String expected, String found) {
      return new SafetensorsFormatException(file, field, expected, found);
    }

    private SafetensorsFormatException fail(
        String field, String expected, String found, Throwable cause) {
      return new SafetensorsFormatException(file, field, expected, found, cause);
    }
  }

  static String dtypeNames() {
    StringBuilder sb = new StringBuilder();
    for (DType d : DType.values()) {
      sb.append(sb.length() == 0 ? "" : ", ").append(d.safetensorsName());
    }
    return sb.toString();
  }

  static String abbreviate(String s) {
    return s.length() <= 80 ? s : s.substring(0, 77) + "...";
  }

  private static String describeStart(String json) {
    return json.isEmpty() ? "an empty header" : "\"" + abbreviate(json) + "\"";
  }
}
