package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Mutates a valid safetensors file thousands of ways (seeded, so failures reproduce) and requires
 * every case to end either in a {@link CheckpointFormatException} or, when the mutation happens to
 * leave a valid file, in a successful read of every tensor: never another exception, a hang or an
 * out-of-memory error.
 */
class SafetensorsFuzzTest {

  private static final int CASES = 1200;
  private static final long SEED = 0x5afe7e45L;

  private static final Logger LOG = LoggerFactory.getLogger(SafetensorsFuzzTest.class);

  @TempDir Path tmp;

  /** What a case did, and whether the reader must refuse it. */
  enum Kind {
    HEADER_BYTE_FLIPS(false),
    DATA_BYTE_FLIPS(false),
    LENGTH_FIELD(true),
    BAD_DTYPE(true),
    BAD_SHAPE(true),
    BAD_OFFSETS(true),
    DUPLICATE_KEY(true),
    DEEP_NESTING(true),
    BAD_METADATA(true),
    TRUNCATED(true),
    TRAILING_GARBAGE(true),
    JSON_TEXT_EDIT(false);

    final boolean mustReject;

    Kind(boolean mustReject) {
      this.mustReject = mustReject;
    }
  }

  /** A tensor entry as raw JSON fragments, so mutations can put anything there. */
  private static final class Entry {
    String name;
    String dtype;
    String shape;
    String offsets;

    Entry(String name, String dtype, String shape, long begin, long end) {
      this.name = name;
      this.dtype = "\"" + dtype + "\"";
      this.shape = shape;
      this.offsets = "[" + begin + "," + end + "]";
    }

    String json() {
      return "\""
          + name
          + "\":{\"dtype\":"
          + dtype
          + ",\"shape\":"
          + shape
          + ",\"data_offsets\":"
          + offsets
          + "}";
    }
  }

  private static final int DATA_SIZE = 64 + 128 + 32 + 16 + 24;

  private static List<Entry> seedEntries() {
    return new ArrayList<>(
        List.of(
            new Entry("model.embed_tokens.weight", "BF16", "[4,8]", 0, 64),
            new Entry("model.layers.0.self_attn.q_proj.weight", "F16", "[8,8]", 64, 192),
            new Entry("empty", "F32", "[0,3]", 192, 192),
            new Entry("model.norm.weight", "F32", "[8]", 192, 224),
            new Entry("lm_head.bias", "F64", "[2]", 224, 240),
            new Entry("ids", "I64", "[3]", 240, 264)));
  }

  private static final String SEED_METADATA = "{\"format\":\"pt\",\"k\":\"v\"}";

  private static String header(String metadata, List<Entry> entries) {
    StringBuilder sb = new StringBuilder("{");
    if (metadata != null) {
      sb.append("\"__metadata__\":").append(metadata);
    }
    for (Entry e : entries) {
      sb.append(sb.length() > 1 ? "," : "").append(e.json());
    }
    return sb.append('}').toString();
  }

  private static byte[] file(String header, byte[] data) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    int pad = (8 - h.length % 8) % 8;
    byte[] padded = Arrays.copyOf(h, h.length + pad);
    Arrays.fill(padded, h.length, padded.length, (byte) ' ');
    return StFiles.bytes(padded.length, padded, data);
  }

  private static byte[] seedData(Random r) {
    byte[] data = new byte[DATA_SIZE];
    r.nextBytes(data);
    return data;
  }

  private static byte[] mutate(Kind kind, Random r) {
    List<Entry> entries = seedEntries();
    String metadata = SEED_METADATA;
    byte[] data = seedData(r);
    Entry victim = entries.get(r.nextInt(entries.size()));
    switch (kind) {
      case HEADER_BYTE_FLIPS -> {
        byte[] f = file(header(metadata, entries), data);
        int headerEnd = 8 + (int) ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        for (int i = 1 + r.nextInt(4); i > 0; i--) {
          f[8 + r.nextInt(headerEnd - 8)] ^= (byte) (1 << r.nextInt(8));
        }
        return f;
      }
      case DATA_BYTE_FLIPS -> {
        byte[] f = file(header(metadata, entries), data);
        for (int i = 0; i < 16; i++) {
          f[f.length - 1 - r.nextInt(DATA_SIZE)] = (byte) 0xff; // NaN-ish patterns, still valid
        }
        return f;
      }
      case LENGTH_FIELD -> {
        byte[] f = file(header(metadata, entries), data);
        long n = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        long[] choices = {
          0,
          1,
          Long.MAX_VALUE,
          -1,
          -8,
          1L << 40,
          f.length,
          f.length - 7,
          n + 1 + r.nextInt(8),
          n - 1 - r.nextInt(8),
          100L * 1024 * 1024 + 1
        };
        ByteBuffer.wrap(f)
            .order(ByteOrder.LITTLE_ENDIAN)
            .putLong(0, choices[r.nextInt(choices.length)]);
        return f;
      }
      case BAD_DTYPE -> {
        String[] bad = {
          "\"F8\"",
          "\"f32\"",
          "\"\"",
          "\"BF16 \"",
          "5",
          "null",
          "[\"F32\"]",
          "\"F32\\u0000\"",
          "{}",
          "\"Q4_0\""
        };
        victim.dtype = bad[r.nextInt(bad.length)];
      }
      case BAD_SHAPE -> {
        String[] bad = {
          "[-1]",
          "[9223372036854775807,2]",
          "[18446744073709551616]",
          "[1.0]",
          "[\"4\"]",
          "[1,2,3,4,5,6,7,8,9]",
          "{}",
          "null",
          "[4294967296,4294967296,4]",
          "[3,3]",
          "[]",
          "[65]",
          "[1e3]",
          "[true]"
        };
        String s = bad[r.nextInt(bad.length)];
        if (s.equals("[]") && victim.shape.equals("[]")) {
          s = "[2]";
        }
        if (victim.name.equals("empty") && (s.equals("[3,3]") || s.equals("[]"))) {
          s = "[1]"; // empty has no bytes: any non-zero count mismatches
        }
        victim.shape = s;
      }
      case BAD_OFFSETS -> {
        if (victim.name.equals("empty")) {
          victim = entries.get(0); // [192,192] reversed is itself: pick a tensor with bytes
        }
        Entry other = entries.get((entries.indexOf(victim) + 1) % entries.size());
        String begin = victim.offsets.substring(1, victim.offsets.indexOf(','));
        String end =
            victim.offsets.substring(victim.offsets.indexOf(',') + 1, victim.offsets.length() - 1);
        switch (r.nextInt(8)) {
          case 0 -> victim.offsets = "[" + end + "," + begin + "]"; // reversed
          case 1 -> victim.offsets = "[0," + (DATA_SIZE + 1 + r.nextInt(100)) + "]"; // beyond end
          case 2 -> victim.offsets = other.offsets; // overlapping
          case 3 -> victim.offsets = "[" + begin + "]";
          case 4 -> victim.offsets = "[" + begin + "," + end + "," + end + "]";
          case 5 -> victim.offsets = "[-1," + end + "]";
          case 6 -> data = Arrays.copyOf(data, DATA_SIZE + 1 + r.nextInt(7)); // hole at the end
          default -> {
            // Shift one tensor right: a hole before it and an overlap or overrun after it.
            long b = Long.parseLong(begin) + 2 + r.nextInt(6);
            long e = Long.parseLong(end) + (b - Long.parseLong(begin));
            victim.offsets = "[" + b + "," + e + "]";
          }
        }
      }
      case DUPLICATE_KEY -> {
        String h = header(metadata, entries);
        String dup = r.nextBoolean() ? victim.json() : "\"__metadata__\":{}";
        return file(h.substring(0, h.length() - 1) + "," + dup + "}", data);
      }
      case DEEP_NESTING -> {
        int depth = 2 + r.nextInt(2000);
        String nest = "[".repeat(depth) + "]".repeat(depth);
        switch (r.nextInt(3)) {
          case 0 -> metadata = "{\"k\":" + nest + "}";
          case 1 -> victim.shape = "[" + nest + "]";
          default -> {
            String h = header(metadata, entries);
            return file(h.substring(0, h.length() - 1) + ",\"x\":" + nest + "}", data);
          }
        }
      }
      case BAD_METADATA -> {
        String[] bad = {
          "[]",
          "\"pt\"",
          "1",
          "null",
          "{\"format\":1}",
          "{\"a\":{}}",
          "{\"a\":[\"b\"]}",
          "{\"a\":null}",
          "true"
        };
        metadata = bad[r.nextInt(bad.length)];
      }
      case TRUNCATED -> {
        byte[] f = file(header(metadata, entries), data);
        return Arrays.copyOf(f, r.nextInt(f.length));
      }
      case TRAILING_GARBAGE -> {
        byte[] f = file(header(metadata, entries), data);
        byte[] garbage = new byte[1 + r.nextInt(64)];
        r.nextBytes(garbage);
        return StFiles.concat(f, garbage);
      }
      case JSON_TEXT_EDIT -> {
        StringBuilder h = new StringBuilder(header(metadata, entries));
        String tokens = "{}[]\",:0123456789-eE.\\ tnul";
        for (int i = 1 + r.nextInt(3); i > 0; i--) {
          int at = r.nextInt(h.length());
          switch (r.nextInt(3)) {
            case 0 -> h.deleteCharAt(at);
            case 1 -> h.insert(at, tokens.charAt(r.nextInt(tokens.length())));
            default -> h.setCharAt(at, tokens.charAt(r.nextInt(tokens.length())));
          }
        }
        return file(h.toString(), data);
      }
      default -> throw new IllegalStateException(kind.toString());
    }
    return file(header(metadata, entries), data);
  }

  /** Opens and fully reads {@code f}; true if accepted, false if refused with a typed error. */
  private static boolean readAll(Path f) throws IOException {
    try (SafetensorsFile st = SafetensorsFile.open(f)) {
      for (String name : st.names()) {
        TensorInfo t = st.info(name);
        ByteBuffer raw = st.raw(name);
        assertEquals(t.byteLength(), raw.remaining(), name);
        if (t.dtype().isFloat()) {
          assertEquals(t.numel(), st.readFloats(name).length, name);
        }
      }
      return true;
    } catch (CheckpointFormatException expected) {
      assertTrue(expected.getMessage().contains("expected"), expected.getMessage());
      return false;
    }
  }

  @Test
  void mutatedFilesAreRefusedWithTypedErrorsOrReadCleanly() {
    Map<Kind, int[]> stats = new EnumMap<>(Kind.class); // [cases, rejected]
    assertTimeoutPreemptively(
        Duration.ofSeconds(60),
        () -> {
          Random r = new Random(SEED);
          Path seed =
              StFiles.write(
                  tmp.resolve("seed.safetensors"),
                  file(header(SEED_METADATA, seedEntries()), seedData(r)));
          assertTrue(readAll(seed), "the unmutated seed must be valid");
          Kind[] kinds = Kind.values();
          for (int i = 0; i < CASES; i++) {
            Kind kind = kinds[i % kinds.length];
            byte[] content = mutate(kind, r);
            Path f = StFiles.write(tmp.resolve("case" + i + ".safetensors"), content);
            boolean accepted;
            try {
              accepted = readAll(f);
            } catch (Throwable t) {
              Files.write(tmp.resolve("failing.safetensors"), content);
              throw new AssertionError(
                  "case "
                      + i
                      + " ("
                      + kind
                      + ") threw "
                      + t
                      + " instead of a"
                      + " CheckpointFormatException",
                  t);
            }
            if (accepted && kind.mustReject) {
              fail(
                  "case "
                      + i
                      + " ("
                      + kind
                      + ") was accepted: "
                      + new String(content, StandardCharsets.UTF_8));
            }
            int[] s = stats.computeIfAbsent(kind, k -> new int[2]);
            s[0]++;
            s[1] += accepted ? 0 : 1;
          }
        });
    int cases = 0;
    int rejected = 0;
    for (Map.Entry<Kind, int[]> e : stats.entrySet()) {
      cases += e.getValue()[0];
      rejected += e.getValue()[1];
    }
    assertEquals(CASES, cases);
    assertEquals(0, stats.get(Kind.DATA_BYTE_FLIPS)[1], "data bytes never invalidate a file");
    assertTrue(
        stats.get(Kind.HEADER_BYTE_FLIPS)[1] > stats.get(Kind.HEADER_BYTE_FLIPS)[0] / 2,
        "most header bit flips must be caught: "
            + Arrays.toString(stats.get(Kind.HEADER_BYTE_FLIPS)));
    int mustReject = 0;
    for (Kind k : Kind.values()) {
      mustReject += k.mustReject ? stats.get(k)[0] : 0;
    }
    assertTrue(rejected >= mustReject, rejected + " rejected of " + cases);
    LOG.info(
        "fuzz: {} cases, {} rejected with a typed error, {} read cleanly",
        cases,
        rejected,
        cases - rejected);
  }
}
