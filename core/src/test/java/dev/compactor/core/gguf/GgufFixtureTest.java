package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pins the writer's output to a committed fixture that the independent Python reader ({@code
 * src/test/python/read_gguf.py}) checks against the Java dequantization in {@code
 * fixture_small.expected.json}. Regenerate both with {@code -Dgguf.fixture.write=<dir>}.
 */
class GgufFixtureTest {

  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  record Spec(String name, GgmlType type, long rows, long cols) {}

  static final List<Spec> SPECS =
      List.of(
          new Spec("norm.f32", GgmlType.F32, 1, 3),
          new Spec("w.f16", GgmlType.F16, 2, 32),
          new Spec("w.q8_0", GgmlType.Q8_0, 4, 64),
          new Spec("w.q4_0", GgmlType.Q4_0, 4, 64),
          new Spec("w.q5_0", GgmlType.Q5_0, 4, 64),
          new Spec("w.q4_k", GgmlType.Q4_K, 2, 256),
          new Spec("w.q6_k", GgmlType.Q6_K, 2, 256));

  static float[] values(Spec s) {
    Random r = new Random(s.name().hashCode());
    float[] x = new float[(int) (s.rows() * s.cols())];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextGaussian() * 0.5);
    }
    return x;
  }

  static void writeFixture(Path gguf, Path expected) throws IOException {
    ObjectNode exp = JSON.createObjectNode();
    ObjectNode md = exp.putObject("metadata");
    ArrayNode ts = exp.putArray("tensors");
    try (GgufWriter w = GgufWriter.create(gguf)) {
      w.put("general.architecture", GgufValue.string("llama"));
      w.put("general.name", GgufValue.string("fixture ✓"));
      w.put("fixture.u32", GgufValue.u32(4_000_000_000L));
      w.put("fixture.i32", GgufValue.i32(-7));
      w.put("fixture.f32", GgufValue.f32(0.25f));
      w.put("fixture.bool", GgufValue.bool(true));
      w.put("fixture.u64", GgufValue.u64(1L << 40));
      w.put("fixture.f64", GgufValue.f64(-2.5));
      w.put("fixture.tokens", GgufValue.stringArray(List.of("<s>", "Ġa", "b c")));
      w.put("fixture.types", GgufValue.i32Array(new int[] {3, 1, 1}));
      md.put("general.architecture", "llama");
      md.put("general.name", "fixture ✓");
      md.put("fixture.u32", 4_000_000_000L);
      md.put("fixture.i32", -7);
      md.put("fixture.f32", 0.25);
      md.put("fixture.bool", true);
      md.put("fixture.u64", 1L << 40);
      md.put("fixture.f64", -2.5);
      md.putArray("fixture.tokens").add("<s>").add("Ġa").add("b c");
      md.putArray("fixture.types").add(3).add(1).add(1);
      for (Spec s : SPECS) {
        long[] shape = s.rows() == 1 ? new long[] {s.cols()} : new long[] {s.rows(), s.cols()};
        w.addTensor(s.name(), shape, s.type());
      }
      for (Spec s : SPECS) {
        float[] x = values(s);
        byte[] q = GgmlQuantizer.quantize(s.type(), x, (int) s.rows(), (int) s.cols(), null);
        w.writeTensor(s.name(), q);
        ObjectNode t = ts.addObject();
        t.put("name", s.name());
        t.put("type", s.type().name());
        ArrayNode shape = t.putArray("shape");
        if (s.rows() != 1) {
          shape.add(s.rows());
        }
        shape.add(s.cols());
        ArrayNode v = t.putArray("values");
        for (float f : GgmlQuantizer.dequantize(s.type(), q, x.length)) {
          v.add(f);
        }
      }
    }
    JSON.writerWithDefaultPrettyPrinter().writeValue(expected.toFile(), exp);
  }

  @Test
  void writerOutputMatchesTheCommittedFixture() throws IOException {
    String target = System.getProperty("gguf.fixture.write");
    if (target != null) {
      Path t = Path.of(target);
      Files.createDirectories(t);
      writeFixture(t.resolve("fixture_small.gguf"), t.resolve("fixture_small.expected.json"));
    }
    Path gguf = dir.resolve("f.gguf");
    Path expected = dir.resolve("f.json");
    writeFixture(gguf, expected);
    byte[] committed;
    try (InputStream in = getClass().getResourceAsStream("/gguf/fixture_small.gguf")) {
      assertNotNull(in, "fixture missing: run with -Dgguf.fixture.write=src/test/resources/gguf");
      committed = in.readAllBytes();
    }
    assertArrayEquals(
        committed,
        Files.readAllBytes(gguf),
        "writer output changed; if intended, regenerate the fixture and rerun read_gguf.py");
    JsonNode exp;
    try (InputStream in = getClass().getResourceAsStream("/gguf/fixture_small.expected.json")) {
      exp = JSON.readTree(in);
    }
    assertEquals(JSON.readTree(expected.toFile()), exp);
    try (GgufReader r = GgufReader.open(gguf)) {
      assertEquals(SPECS.size(), r.tensors().size());
      assertEquals("fixture ✓", r.require("general.name").asString());
    }
  }
}
