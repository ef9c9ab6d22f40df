package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.UsageException;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import java.io.PrintStream;
import java.time.Duration;

/**
 * {@code compactor watch JOB}: prints a job's public events (status, failures, evaluation, model
 * ready) from its beginning until it ends.
 */
public final class WatchCommand implements Command {
  @Override
  public String name() {
    return "watch";
  }

  @Override
  public String summary() {
    return "follow one job's events until it ends";
  }

  @Override
  public String usage() {
    return "JOB [--bootstrap HOST:PORT] [--registry URL] [--timeout SECONDS]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    String[] job = new String[1];
    java.util.Set<String> options = new java.util.HashSet<>(Connection.OPTIONS);
    options.add("timeout");
    Args args = Args.parse(Connection.positional(argv, 1, job), options, java.util.Set.of());
    if (job[0] == null) {
      throw new UsageException("expected the job id");
    }
    Connection c = Connection.from(args);
    try (PipelineClient client = c.client();
        PipelineClient.Follower f = client.follow(true)) {
      JobStatus end =
          (JobStatus)
              f.await(
                  job[0],
                  Duration.ofSeconds(args.longValue("timeout", 3600)),
                  r -> {
                    out.println(JobReport.line(r));
                    if (r instanceof EvaluationCompleted e) {
                      JobReport.table(e, out);
                    }
                  },
                  r -> r instanceof JobStatus s && DemoCommand.isTerminal(s.getState()));
      return end.getState() == JobState.SUCCEEDED ? 0 : 1;
    }
  }
}
