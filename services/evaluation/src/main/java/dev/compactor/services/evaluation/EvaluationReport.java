package dev.compactor.services.evaluation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.events.StoredFile;
import dev.compactor.runtime.S3Uri;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The figures one evaluation measured for one model of one job, stored next to the job's artifacts
 * at {@link #location} so that the publish step of the same job can apply the recipe's quality
 * gates to exactly the model that was evaluated (its artifact hash is part of the key).
 *
 * @param jobId the job
 * @param modelSha256 the evaluated artifact's manifest hash
 * @param baselineSha256 the baseline artifact's manifest hash
 * @param metrics measurements by name (see {@link EvaluationStage} for the names)
 * @param datasetUri the evaluation text's source
 * @param sizeFormat which stored form {@code sizeBytes} is ({@link StoredForms.Form#name}), or null
 *     in reports from before stored forms were measured
 * @param files every stored file of the evaluated artifact (empty in older reports)
 * @param latencyMeasuredWith what the latency metrics were measured with, or null
 * @param peakMemoryMeasures what {@code peakRssBytes} measures, or why it is missing; or null
 * @param energyMeasuredWith {@code measured: <source>} or {@code estimated: <source>} for the
 *     {@code energy.*} metrics, or null when energy was not measured
 * @param nativeSpeedMeasuredWith what the {@code native.<file>.*} metrics ran on (engine {@code
 *     native-gguf}, runtime, threads, the F32 reference), or null when native speed was not
 *     measured
 */
public record EvaluationReport(
    String jobId,
    String modelSha256,
    String baselineSha256,
    Map<String, Double> metrics,
    String datasetUri,
    String sizeFormat,
    List<StoredFile> files,
    String latencyMeasuredWith,
    String peakMemoryMeasures,
    String energyMeasuredWith,
    String nativeSpeedMeasuredWith) {

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public EvaluationReport {
    metrics = new TreeMap<>(metrics);
    files = files == null ? List.of() : List.copyOf(files);
  }

  /** A report without native speed. */
  public EvaluationReport(
      String jobId,
      String modelSha256,
      String baselineSha256,
      Map<String, Double> metrics,
      String datasetUri,
      String sizeFormat,
      List<StoredFile> files,
      String latencyMeasuredWith,
      String peakMemoryMeasures,
      String energyMeasuredWith) {
    this(
        jobId,
        modelSha256,
        baselineSha256,
        metrics,
        datasetUri,
        sizeFormat,
        files,
        latencyMeasuredWith,
        peakMemoryMeasures,
        energyMeasuredWith,
        null);
  }

  /** A report without energy. */
  public EvaluationReport(
      String jobId,
      String modelSha256,
      String baselineSha256,
      Map<String, Double> metrics,
      String datasetUri,
      String sizeFormat,
      List<StoredFile> files,
      String latencyMeasuredWith,
      String peakMemoryMeasures) {
    this(
        jobId,
        modelSha256,
        baselineSha256,
        metrics,
        datasetUri,
        sizeFormat,
        files,
        latencyMeasuredWith,
        peakMemoryMeasures,
        null,
        null);
  }

  /** A report with metrics only (no stored-file table, no labels). */
  public EvaluationReport(
      String jobId,
      String modelSha256,
      String baselineSha256,
      Map<String, Double> metrics,
      String datasetUri) {
    this(jobId, modelSha256, baselineSha256, metrics, datasetUri, null, List.of(), null, null);
  }

  /**
   * Where the report of {@code jobId}'s evaluation of the artifact {@code modelSha256} is kept:
   * {@code s3://<bucket>/evaluations/<jobId>/<modelSha256>.json}.
   */
  public static S3Uri location(String bucket, String jobId, String modelSha256) {
    return new S3Uri(
        bucket,
        "evaluations/" + jobId.replaceAll("[^A-Za-z0-9._-]", "_") + "/" + modelSha256 + ".json");
  }

  /** The bucket of an {@code s3://bucket/...} artifact URI. */
  public static String bucketOf(String artifactUri) {
    return S3Uri.parse(artifactUri).bucket();
  }

  /** A metric, or null when it was not measured. */
  public Double metric(String name) {
    return metrics.get(name);
  }

  public byte[] toJson() {
    ObjectNode o = JSON.createObjectNode();
    o.put("jobId", jobId);
    o.put("modelSha256", modelSha256);
    o.put("baselineSha256", baselineSha256);
    o.put("datasetUri", datasetUri);
    o.put("sizeFormat", sizeFormat);
    o.put("latencyMeasuredWith", latencyMeasuredWith);
    o.put("peakMemoryMeasures", peakMemoryMeasures);
    o.put("energyMeasuredWith", energyMeasuredWith);
    o.put("nativeSpeedMeasuredWith", nativeSpeedMeasuredWith);
    ArrayNode fs = o.putArray("files");
    for (StoredFile f : files) {
      fs.addObject()
          .put("path", f.getPath())
          .put("format", f.getFormat())
          .put("sizeBytes", f.getSizeBytes());
    }
    ObjectNode m = o.putObject("metrics");
    metrics.forEach(m::put);
    try {
      return JSON.writeValueAsBytes(o);
    } catch (IOException e) {
      throw new IllegalStateException("a tree of strings and numbers always serializes", e);
    }
  }

  /**
   * @throws IllegalArgumentException when the bytes are not a report
   */
  public static EvaluationReport parse(byte[] json) {
    try {
      JsonNode o = JSON.readTree(new String(json, StandardCharsets.UTF_8));
      Map<String, Double> metrics = new TreeMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = o.get("metrics").fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        metrics.put(e.getKey(), e.getValue().asDouble());
      }
      List<StoredFile> files = new ArrayList<>();
      for (JsonNode f : o.path("files")) {
        files.add(
            new StoredFile(
                f.get("path").asText(), f.get("format").asText(), f.get("sizeBytes").asLong()));
      }
      return new EvaluationReport(
          o.get("jobId").asText(),
          o.get("modelSha256").asText(),
          o.get("baselineSha256").asText(),
          metrics,
          o.path("datasetUri").asText(null),
          o.path("sizeFormat").asText(null),
          files,
          o.path("latencyMeasuredWith").asText(null),
          o.path("peakMemoryMeasures").asText(null),
          o.path("energyMeasuredWith").asText(null),
          o.path("nativeSpeedMeasuredWith").asText(null));
    } catch (IOException | NullPointerException e) {
      throw new IllegalArgumentException(
          "evaluation report: expected a JSON object with jobId, modelSha256, baselineSha256 and"
              + " metrics, found something else: "
              + e.getMessage(),
          e);
    }
  }
}
