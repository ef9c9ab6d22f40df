package dev.compactor.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * The durable answer to one stage request, stored in S3 at {@code
 * markers/<stage>/<jobId>/step-<step>/attempt-<attempt>.json} before that answer is published:
 * which request record it answers (topic, partition, offset), whether the step completed or failed,
 * and the exact bytes of every record to publish. See {@link StageWorker} for how it makes
 * redelivered and duplicate requests cheap and publication effectively-once.
 *
 * @param topic the request record's topic
 * @param partition the request record's partition
 * @param offset the request record's offset
 * @param completed true for StageCompleted, false for StageFailed
 * @param worker the worker that computed the answer
 * @param records the serialized records to publish, in order
 */
record CompletionMarker(
    String topic,
    int partition,
    long offset,
    boolean completed,
    String worker,
    List<OutRecord> records) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** One serialized record to publish. */
  record OutRecord(String topic, byte[] key, byte[] value) {}

  CompletionMarker {
    records = List.copyOf(records);
  }

  /** Where the marker of a request lives. */
  static S3Uri location(String bucket, String stage, String jobId, int step, int attempt) {
    // Job ids are user-visible strings; any that are not plain key segments are hashed, so two
    // ids can never share a marker.
    String safeJob =
        jobId.matches("[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
            ? jobId
            : "h-" + Sha256.of(jobId.getBytes(StandardCharsets.UTF_8));
    return new S3Uri(
        bucket,
        "markers/" + stage + "/" + safeJob + "/step-" + step + "/attempt-" + attempt + ".json");
  }

  /** True when this marker was written for the record at these coordinates. */
  boolean answers(String topic, int partition, long offset) {
    return this.topic.equals(topic) && this.partition == partition && this.offset == offset;
  }

  byte[] toJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("topic", topic).put("partition", partition).put("offset", offset);
    root.put("completed", completed).put("worker", worker);
    ArrayNode rs = root.putArray("records");
    Base64.Encoder b64 = Base64.getEncoder();
    for (OutRecord r : records) {
      ObjectNode n = rs.addObject().put("topic", r.topic());
      n.put("key", r.key() == null ? null : b64.encodeToString(r.key()));
      n.put("value", b64.encodeToString(r.value()));
    }
    return root.toString().getBytes(StandardCharsets.UTF_8);
  }

  static CompletionMarker parse(byte[] json) {
    try {
      JsonNode root = JSON.readTree(json);
      List<OutRecord> records = new ArrayList<>();
      Base64.Decoder b64 = Base64.getDecoder();
      for (JsonNode n : root.required("records")) {
        JsonNode key = n.get("key");
        records.add(
            new OutRecord(
                n.required("topic").asText(),
                key == null || key.isNull() ? null : b64.decode(key.asText()),
                b64.decode(n.required("value").asText())));
      }
      return new CompletionMarker(
          root.required("topic").asText(),
          root.required("partition").asInt(),
          root.required("offset").asLong(),
          root.required("completed").asBoolean(),
          root.required("worker").asText(),
          records);
    } catch (IOException | IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "completion marker: expected marker JSON, found: " + e.getMessage(), e);
    }
  }
}
