package dev.compactor.core.factorize;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.compactor.core.io.SafetensorsFile;
import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.file.Path;

/** Reads make_factorize_golden.py's file (F32 inputs, F64 results). */
final class FactorizeGolden implements AutoCloseable {

  static final Path FILE =
      Path.of("src/test/resources/golden/factorize/factorize_golden.safetensors");

  final SafetensorsFile file;

  FactorizeGolden() throws IOException {
    file = SafetensorsFile.open(FILE);
    assertEquals("compactor-factorize-golden", file.metadata().get("magic"));
    assertEquals("1", file.metadata().get("version"));
  }

  int rank() {
    return Integer.parseInt(file.metadata().get("rank"));
  }

  float[] floats(String name) throws IOException {
    return file.readFloats(name);
  }

  double[] doubles(String name) throws IOException {
    DoubleBuffer b = file.raw(name).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
    double[] d = new double[b.remaining()];
    b.get(d);
    return d;
  }

  long[] shape(String name) {
    return file.info(name).shape();
  }

  @Override
  public void close() throws IOException {
    file.close();
  }
}
