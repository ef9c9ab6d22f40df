package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.UsageException;
import dev.compactor.core.recipe.FactorizeParams;
import dev.compactor.core.recipe.InvalidRecipeException;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeLimits;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.services.orchestrator.JobTopology;
import dev.compactor.services.quantization.QuantizationStage;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code compactor submit}: checks a recipe (including what is not built yet) and submits a job for
 * a local model directory or an {@code s3://} prefix to a running pipeline; prints the job id.
 */
public final class SubmitCommand implements Command {
  @Override
  public String name() {
    return "submit";
  }

  @Override
  public String summary() {
    return "submit a compression job to a running pipeline";
  }

  @Override
  public String usage() {
    return "--model DIR|s3://bucket/prefix/ --recipe FILE [--http URL] [--data DIR]"
        + " [--bootstrap HOST:PORT] [--registry URL]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Set<String> options = new HashSet<>(Connection.OPTIONS);
    options.addAll(Set.of("model", "recipe"));
    Args args = Args.parse(argv, options, Set.of());
    Connection c = Connection.from(args);
    String model = args.required("model");
    if (!model.startsWith("s3://")) {
      Path dir = Path.of(model).toAbsolutePath();
      if (!Files.isDirectory(dir)) {
        throw new UsageException("--model: expected a directory or s3:// prefix, found " + model);
      }
      model = dir.toUri().toString();
    }
    String yaml = Files.readString(args.requiredPath("recipe"));
    check(yaml);
    String submitter = System.getProperty("user.name");
    if (!c.apiToken().isEmpty()) {
      out.println(submitOverHttp(c, model, yaml, submitter));
      return 0;
    }
    // no API token known: produce JobSubmitted on Kafka (needs Kafka and registry credentials)
    try (PipelineClient client = c.client()) {
      out.println(client.submit(model, yaml, submitter));
    }
    return 0;
  }

  /** {@code POST /jobs} with the bearer token; returns the job id. */
  static String submitOverHttp(Connection c, String model, String yaml, String submitter)
      throws Exception {
    com.fasterxml.jackson.databind.ObjectMapper json =
        new com.fasterxml.jackson.databind.ObjectMapper();
    String body =
        json.createObjectNode()
            .put("modelUri", model)
            .put("recipeYaml", yaml)
            .put("submitter", submitter)
            .toString();
    java.net.http.HttpResponse<String> r =
        java.net.http.HttpClient.newHttpClient()
            .send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create(c.http() + "/jobs"))
                    .header("Content-Type", "application/json")
                    .header("Authorization", "Bearer " + c.apiToken())
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body))
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 202) {
      throw new UsageException(
          "submit: " + c.http() + "/jobs answered " + r.statusCode() + ": " + r.body());
    }
    return json.readTree(r.body()).path("jobId").asText();
  }

  /** Refuses recipes that are invalid or use what is not built yet, before anything is sent. */
  static void check(String yaml) throws UsageException {
    Recipe recipe;
    try {
      recipe = Recipe.parse(yaml);
    } catch (InvalidRecipeException e) {
      throw new UsageException("recipe: " + e.getMessage());
    }
    List<String> problems = new ArrayList<>();
    RecipeLimits.from(System::getenv).check(recipe).forEach(p -> problems.add(p.toString()));
    for (int i = 0; i < recipe.stages().size(); i++) {
      StageSpec s = recipe.stage(i);
      String stage = s.kind().recipeKey();
      if (!JobTopology.SERVED_STAGES.contains(stage)) {
        problems.add(
            "stages[" + i + "]." + stage + ": not supported yet: no " + stage + " service exists");
      }
      if (s.params() instanceof QuantizeParams q) {
        QuantizationStage.check(q);
      }
      if (s.params() instanceof FactorizeParams f) {
        try {
          f.rankRule();
        } catch (UnsupportedOperationException e) {
          problems.add("stages[" + i + "].factorize: " + e.getMessage());
        }
      }
    }
    if (!problems.isEmpty()) {
      throw new UsageException("recipe: " + String.join("; ", problems));
    }
  }
}
