package dev.compactor.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * A point-in-time view of one {@link StageWorker}, for health checks, dashboards and tests: its
 * state, partitions, counters, and the job it is running (with progress).
 *
 * @param stage the stage kind
 * @param worker the worker identity
 * @param state STARTING, RUNNING, STOPPED or FAILED
 * @param assigned the request-topic partitions it owns
 * @param completed steps answered with StageCompleted
 * @param failed steps answered with StageFailed
 * @param duplicates requests recognized as already answered (not recomputed, not republished)
 * @param deadLettered undecodable records copied to the dead-letter topic
 * @param abandoned jobs given up because their partition moved or the worker stopped
 * @param retries redeliveries scheduled after storage, registry or Kafka faults
 * @param current the running job, or null when idle
 */
public record WorkerHealth(
    String stage,
    String worker,
    String state,
    List<String> assigned,
    long completed,
    long failed,
    long duplicates,
    long deadLettered,
    long abandoned,
    long cancelled,
    long retries,
    CurrentJob current) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The job being computed.
   *
   * @param jobId the job
   * @param step its step index
   * @param attempt the request's attempt number
   * @param record the request's {@code topic-partition@offset}
   * @param runningMs how long it has run
   * @param progress last reported fraction done
   * @param message last reported progress message
   */
  public record CurrentJob(
      String jobId,
      int step,
      int attempt,
      String record,
      long runningMs,
      double progress,
      String message) {}

  /** True while the worker is starting or consuming. */
  public boolean healthy() {
    return state.equals("STARTING") || state.equals("RUNNING");
  }

  /** The snapshot as a JSON object. */
  public String toJson() {
    ObjectNode n = JSON.valueToTree(this);
    n.put("healthy", healthy());
    return n.toString();
  }
}
