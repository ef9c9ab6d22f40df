package dev.compactor.schemas;

import dev.compactor.events.JobStatus;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;

/**
 * Runs in a child JVM started without {@code -Dorg.apache.avro.SERIALIZABLE_PACKAGES}: reads a
 * generated event with plain Avro, after installing {@link AvroClassTrust} when asked. Exit code 0
 * = read fine, 3 = Avro refused the class, 4 = another failure.
 */
public final class AvroClassTrustProbe {
  private AvroClassTrustProbe() {}

  public static void main(String[] args) throws IOException {
    if (args.length > 0 && args[0].equals("trust")) {
      AvroClassTrust.trustCompactorClasses();
    }
    try {
      JobStatus status = (JobStatus) SampleEvents.all().get(7);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
      new SpecificDatumWriter<>(JobStatus.class).write(status, encoder);
      encoder.flush();
      JobStatus read =
          new SpecificDatumReader<>(JobStatus.class)
              .read(null, DecoderFactory.get().binaryDecoder(out.toByteArray(), null));
      System.exit(read.equals(status) ? 0 : 4);
    } catch (RuntimeException e) {
      for (Throwable t = e; t != null; t = t.getCause()) {
        if (t instanceof SecurityException) {
          System.exit(3);
        }
      }
      throw e;
    }
  }
}
