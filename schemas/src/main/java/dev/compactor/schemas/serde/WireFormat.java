package dev.compactor.schemas.serde;

import java.nio.ByteBuffer;
import org.apache.kafka.common.errors.SerializationException;

/**
 * The Confluent wire format shared with every Confluent-compatible client:
 *
 * <pre>
 * byte 0      magic byte, always 0x00
 * bytes 1..4  schema id in the registry, big-endian signed int
 * bytes 5..   the record in Avro binary encoding (no container header, no sync markers)
 * </pre>
 */
public final class WireFormat {

  /** The only magic byte defined by the format. */
  public static final byte MAGIC_BYTE = 0;

  /** Length of the magic byte plus schema id. */
  public static final int HEADER_LENGTH = 5;

  private WireFormat() {}

  /** Writes the 5-byte header for {@code schemaId}. */
  public static void writeHeader(ByteBuffer out, int schemaId) {
    out.put(MAGIC_BYTE).putInt(schemaId);
  }

  /**
   * Reads and validates the header of a serialized record.
   *
   * @param where names the record in error messages (topic, key/value)
   * @return the schema id
   * @throws SerializationException when the record is shorter than the header or the magic byte is
   *     not 0
   */
  public static int readSchemaId(byte[] data, String where) {
    if (data.length < HEADER_LENGTH) {
      throw new SerializationException(
          "truncated record in "
              + where
              + ": "
              + data.length
              + " bytes, shorter than the "
              + HEADER_LENGTH
              + "-byte Confluent wire-format header (magic byte + schema id)");
    }
    if (data[0] != MAGIC_BYTE) {
      throw new SerializationException(
          String.format(
              "unknown magic byte 0x%02x in %s: expected 0x00 (Confluent wire format);"
                  + " the record was not written by a schema-registry Avro serializer",
              data[0] & 0xff, where));
    }
    return ByteBuffer.wrap(data, 1, 4).getInt();
  }
}
