package dev.compactor.services.orchestrator;

import dev.compactor.events.JobSubmitted;

/**
 * Sends a {@link JobSubmitted} on its way to the orchestrator topology; the service's is a Kafka
 * producer to {@code compactor.jobs.submitted} keyed by job id.
 */
@FunctionalInterface
public interface JobSubmitter {

  /** Returns once the submission is durably accepted; throws when it could not be. */
  void submit(JobSubmitted job) throws Exception;
}
