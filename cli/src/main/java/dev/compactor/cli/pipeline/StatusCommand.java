package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** {@code compactor status [JOB]}: the orchestrator's view of one job or of all jobs (JSON). */
public final class StatusCommand implements Command {
  @Override
  public String name() {
    return "status";
  }

  @Override
  public String summary() {
    return "show the status of one job, or of every job, from the orchestrator";
  }

  @Override
  public String usage() {
    return "[JOB] [--http URL]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    String[] job = new String[1];
    Args args =
        Args.parse(Connection.positional(argv, 1, job), Connection.OPTIONS, java.util.Set.of());
    Connection c = Connection.from(args);
    String url = c.http() + (job[0] == null ? "/jobs" : "/jobs/" + job[0]);
    HttpResponse<String> r =
        HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5))
            .build()
            .send(
                HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
    out.println(r.body());
    if (r.statusCode() != 200) {
      err.println("status: " + url + " answered HTTP " + r.statusCode());
      return 1;
    }
    return 0;
  }
}
