package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.UsageException;
import java.io.PrintStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

/**
 * {@code compactor cancel JOB [--reason TEXT]}: asks the orchestrator to cancel a job ({@code
 * DELETE /jobs/{id}}). The job ends CANCELLED, its running step stops without publishing, and it is
 * never resumed.
 */
public final class CancelCommand implements Command {
  @Override
  public String name() {
    return "cancel";
  }

  @Override
  public String summary() {
    return "cancel a job: its running step stops and nothing more runs";
  }

  @Override
  public String usage() {
    return "JOB [--reason TEXT] [--http URL] [--data DIR]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    String[] job = new String[1];
    Set<String> options = new HashSet<>(Connection.OPTIONS);
    options.add("reason");
    Args args = Args.parse(Connection.positional(argv, 1, job), options, Set.of());
    if (job[0] == null) {
      throw new UsageException("expected the job id");
    }
    Connection c = Connection.from(args);
    String url =
        c.http()
            + "/jobs/"
            + URLEncoder.encode(job[0], StandardCharsets.UTF_8)
            + (args.present("reason")
                ? "?reason=" + URLEncoder.encode(args.string("reason", ""), StandardCharsets.UTF_8)
                : "");
    if (c.apiToken().isEmpty()) {
      throw new UsageException(
          "cancel needs the job API's token: set COMPACTOR_API_TOKEN or give --data DIR of the"
              + " running `compactor up`");
    }
    HttpResponse<String> r =
        HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5))
            .followRedirects(HttpClient.Redirect.NEVER)
            .build()
            .send(
                HttpRequest.newBuilder(URI.create(url))
                    .timeout(Duration.ofSeconds(30))
                    .header("Authorization", "Bearer " + c.apiToken())
                    .DELETE()
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() == 202) {
      out.println(
          "cancel requested for job " + job[0] + "; follow it with: compactor watch " + job[0]);
      return 0;
    }
    err.println("cancel: " + url + " answered HTTP " + r.statusCode() + ": " + r.body());
    return 1;
  }
}
