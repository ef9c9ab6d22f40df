package dev.compactor.services.orchestrator;

import com.fasterxml.jackson.annotation.JsonAutoDetect.Visibility;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.PropertyAccessor;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

/**
 * JSON form of {@link JobRecord}: the state store's value format (the changelog is internal, so it
 * needs no registry) and the HTTP API's body. One mapper, so both read the same.
 */
public final class JobJson {

  static final ObjectMapper MAPPER =
      new ObjectMapper()
          .setVisibility(PropertyAccessor.ALL, Visibility.NONE)
          .setVisibility(PropertyAccessor.FIELD, Visibility.ANY)
          .setVisibility(PropertyAccessor.CREATOR, Visibility.ANY)
          .setSerializationInclusion(JsonInclude.Include.NON_NULL)
          // a newer orchestrator may add fields; an older one restoring the store must not fail
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  private JobJson() {}

  /** Serde for the job-state store. */
  public static Serde<JobRecord> serde() {
    return Serdes.serdeFrom(
        (topic, job) -> job == null ? null : bytes(job),
        (topic, data) -> data == null ? null : read(data));
  }

  /** The whole record, as served by {@code GET /jobs/{id}}. */
  public static String toJson(JobRecord job) {
    try {
      return MAPPER.writeValueAsString(job);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The short form listed by {@code GET /jobs}. */
  static ObjectNode summary(JobRecord job) {
    ObjectNode o =
        MAPPER
            .createObjectNode()
            .put("jobId", job.jobId())
            .put("state", job.state().name())
            .put("step", job.currentStep())
            .put("totalSteps", job.steps().size());
    if (job.currentStage() != null) {
      o.put("stage", job.currentStage());
    }
    if (job.recipeName() != null) {
      o.put("recipe", job.recipeName());
    }
    return o.put("message", job.message()).put("updatedAtMs", job.updatedAtMs());
  }

  static JobRecord read(byte[] data) {
    try {
      return MAPPER.readValue(data, JobRecord.class);
    } catch (IOException e) {
      throw new SerializationException("job state is not a JobRecord JSON document: " + e, e);
    }
  }

  private static byte[] bytes(JobRecord job) {
    try {
      return MAPPER.writeValueAsBytes(job);
    } catch (IOException e) {
      throw new SerializationException("cannot write job " + job.jobId() + " as JSON: " + e, e);
    }
  }
}
