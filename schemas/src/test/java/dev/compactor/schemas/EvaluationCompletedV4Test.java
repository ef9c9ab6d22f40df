package dev.compactor.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.compactor.events.EnergyFigures;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.SpeedPoint;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.junit.jupiter.api.Test;

/**
 * Bytes an evaluator of v3 writes are read by the v4 event class with energy null and speed empty;
 * v4 figures survive a round trip. (The schema-level check is {@link
 * ReleasedSchemasBackwardCompatibleTest}; this one runs the decoder on real bytes.)
 */
class EvaluationCompletedV4Test {

  private static final Path V3 = Path.of("src/main/released/EvaluationCompleted.v3.avsc");

  @Test
  void v3BytesReadAsV4WithDefaults() throws IOException {
    Schema v3 = new Schema.Parser().parse(Files.readString(V3));
    EvaluationCompleted sample = sample();
    // Re-encode the sample as a v3 writer would: read it with the v3 schema, write with v3.
    GenericRecord asV3 =
        new GenericDatumReader<GenericRecord>(EvaluationCompleted.getClassSchema(), v3)
            .read(null, DecoderFactory.get().binaryDecoder(write(sample), null));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
    new GenericDatumWriter<GenericRecord>(v3).write(asV3, enc);
    enc.flush();

    EvaluationCompleted read =
        new SpecificDatumReader<EvaluationCompleted>(v3, EvaluationCompleted.getClassSchema())
            .read(null, DecoderFactory.get().binaryDecoder(out.toByteArray(), null));
    assertNull(read.getEnergy());
    assertEquals(List.of(), read.getSpeed());
    assertEquals(sample.getMetrics(), read.getMetrics());
    assertEquals(sample.getExtra(), read.getExtra());
  }

  @Test
  void v4FiguresRoundTrip() throws IOException {
    EvaluationCompleted sample = sample();
    EvaluationCompleted read =
        new SpecificDatumReader<>(EvaluationCompleted.class)
            .read(null, DecoderFactory.get().binaryDecoder(write(sample), null));
    assertEquals(sample, read);
    assertEquals("estimated", read.getEnergy().getKind());
    assertEquals(4, read.getSpeed().get(1).getBatch());
  }

  private static byte[] write(EvaluationCompleted e) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
    new SpecificDatumWriter<>(EvaluationCompleted.class).write(e, enc);
    enc.flush();
    return out.toByteArray();
  }

  private static EvaluationCompleted sample() {
    EvaluationCompleted base =
        SampleEvents.all().stream()
            .filter(EvaluationCompleted.class::isInstance)
            .map(EvaluationCompleted.class::cast)
            .findFirst()
            .orElseThrow();
    return EvaluationCompleted.newBuilder(base)
        .setEnergy(
            EnergyFigures.newBuilder()
                .setKind("estimated")
                .setSource("cpu-time × W/core: process CPU time × 4.00 W per busy CPU (default)")
                .setBatch(1)
                .setContextLength(32)
                .setCandidateJoulesPerToken(0.012)
                .setBaselineJoulesPerToken(0.02)
                .setCandidateJoulesPerPrefillToken(0.001)
                .build())
        .setSpeed(List.of(point(1, 0.012), point(4, null)))
        .build();
  }

  private static SpeedPoint point(int batch, Double joules) {
    return SpeedPoint.newBuilder()
        .setBatch(batch)
        .setContextLength(32)
        .setDecodeTokens(16)
        .setPrefillTokensPerSecond(9000)
        .setDecodeTokensPerSecond(300 * batch)
        .setBaselinePrefillTokensPerSecond(5000)
        .setBaselineDecodeTokensPerSecond(200 * batch)
        .setPeakBytes(400L << 20)
        .setCandidateJoulesPerToken(joules)
        .build();
  }
}
