package dev.compactor.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.NativeSpeedPoint;
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
 * Bytes an evaluator of v4 writes are read by the v5 event class with {@code nativeSpeed} empty; a
 * v5 native speed point survives a round trip; and a v4 reader reads v5 bytes, ignoring it.
 */
class EvaluationCompletedV5Test {

  private static final Path V4 = Path.of("src/main/released/EvaluationCompleted.v4.avsc");

  @Test
  void v4BytesReadAsV5WithNoNativeSpeed() throws IOException {
    Schema v4 = new Schema.Parser().parse(Files.readString(V4));
    EvaluationCompleted sample = sample();
    GenericRecord asV4 =
        new GenericDatumReader<GenericRecord>(EvaluationCompleted.getClassSchema(), v4)
            .read(null, DecoderFactory.get().binaryDecoder(write(sample), null));
    assertEquals(null, asV4.getSchema().getField("nativeSpeed"));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
    new GenericDatumWriter<GenericRecord>(v4).write(asV4, enc);
    enc.flush();

    EvaluationCompleted read =
        new SpecificDatumReader<EvaluationCompleted>(v4, EvaluationCompleted.getClassSchema())
            .read(null, DecoderFactory.get().binaryDecoder(out.toByteArray(), null));
    assertEquals(List.of(), read.getNativeSpeed());
    assertEquals(sample.getMetrics(), read.getMetrics());
    assertEquals(sample.getExtra(), read.getExtra());
  }

  @Test
  void v5NativeSpeedRoundTrips() throws IOException {
    EvaluationCompleted sample = sample();
    EvaluationCompleted read =
        new SpecificDatumReader<>(EvaluationCompleted.class)
            .read(null, DecoderFactory.get().binaryDecoder(write(sample), null));
    assertEquals(sample, read);
    NativeSpeedPoint p = read.getNativeSpeed().get(0);
    assertEquals("native-gguf", p.getEngine());
    assertEquals("F32", p.getBaselineFileType());
    assertEquals(2, p.getThreads());
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
        .setNativeSpeed(
            List.of(
                NativeSpeedPoint.newBuilder()
                    .setEngine("native-gguf")
                    .setGguf("model-q4_0.gguf")
                    .setFileType("Q4_0")
                    .setBaselineFileType("F32")
                    .setThreads(2)
                    .setPromptTokens(32)
                    .setDecodeTokens(32)
                    .setRepeats(3)
                    .setPrefillTokensPerSecond(2000)
                    .setDecodeTokensPerSecond(900)
                    .setBaselinePrefillTokensPerSecond(1500)
                    .setBaselineDecodeTokensPerSecond(500)
                    .setMeasuredWith("GgufLlama on Java 17, 2 threads")
                    .build()))
        .build();
  }
}
