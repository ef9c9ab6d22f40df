package dev.compactor.services.orchestrator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeProblem;
import dev.compactor.events.JobSubmitted;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * The body of {@code POST /jobs}: {@code {"modelUri": "s3://...", "recipeYaml": "...", "jobId":
 * optional, "submitter": optional}}. The recipe is validated here so the caller hears about every
 * problem at once (HTTP 422); the topology validates again, as it does for submissions that come
 * straight from Kafka.
 */
final class SubmitRequest {

  private static final Pattern JOB_ID = Pattern.compile("[A-Za-z0-9._-]{1,100}");

  /** An HTTP answer to a bad request. */
  record Rejection(int status, ObjectNode body) {}

  private SubmitRequest() {}

  /** The event to submit, or why the request cannot be accepted. */
  static Object parse(byte[] body, long nowMs) {
    JsonNode json;
    try {
      json = JobJson.MAPPER.readTree(body);
    } catch (IOException e) {
      return reject(
          400, "body: expected a JSON object but found unparsable text: " + e.getMessage());
    }
    if (json == null || !json.isObject()) {
      return reject(400, "body: expected a JSON object with modelUri and recipeYaml");
    }
    Optional<String> modelUri = text(json, "modelUri");
    Optional<String> recipeYaml = text(json, "recipeYaml");
    if (modelUri.isEmpty() || recipeYaml.isEmpty()) {
      return reject(400, "body: modelUri and recipeYaml are required strings");
    }
    String jobId = text(json, "jobId").orElse(UUID.randomUUID().toString());
    if (!JOB_ID.matcher(jobId).matches()) {
      return reject(
          400,
          "jobId: expected letters, digits, '.', '_' or '-' (at most 100) but found \""
              + jobId
              + "\"");
    }
    List<RecipeProblem> problems = Recipe.validate(recipeYaml.get());
    if (!problems.isEmpty()) {
      ObjectNode b = JobJson.MAPPER.createObjectNode().put("error", "invalid recipe");
      ArrayNode list = b.putArray("problems");
      problems.forEach(p -> list.addObject().put("path", p.path()).put("message", p.message()));
      return new Rejection(422, b);
    }
    return JobSubmitted.newBuilder()
        .setJobId(jobId)
        .setSubmittedAtMs(nowMs)
        .setModelUri(modelUri.get())
        .setRecipeYaml(recipeYaml.get())
        .setSubmitter(text(json, "submitter").orElse(null))
        .build();
  }

  private static Optional<String> text(JsonNode json, String field) {
    JsonNode n = json.get(field);
    return n != null && n.isTextual() && !n.asText().isBlank()
        ? Optional.of(n.asText())
        : Optional.empty();
  }

  private static Rejection reject(int status, String message) {
    return new Rejection(status, JobJson.MAPPER.createObjectNode().put("error", message));
  }
}
