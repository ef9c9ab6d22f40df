package dev.compactor.services.orchestrator;

import dev.compactor.events.JobCancelRequested;
import dev.compactor.events.JobSubmitted;

/**
 * Sends users' requests on their way to the orchestrator topology; the service's are Kafka
 * producers to {@code compactor.jobs.submitted} and {@code compactor.jobs.cancel}, keyed by job id.
 */
public interface JobSubmitter {

  /** Returns once the submission is durably accepted; throws when it could not be. */
  void submit(JobSubmitted job) throws Exception;

  /** Returns once the cancellation is durably accepted; throws when it could not be. */
  void cancel(JobCancelRequested cancel) throws Exception;

  /** A submitter made of two functions (tests, adapters). */
  static JobSubmitter of(Sender<JobSubmitted> submit, Sender<JobCancelRequested> cancel) {
    return new JobSubmitter() {
      @Override
      public void submit(JobSubmitted job) throws Exception {
        submit.send(job);
      }

      @Override
      public void cancel(JobCancelRequested c) throws Exception {
        cancel.send(c);
      }
    };
  }

  /** Sends one record. */
  @FunctionalInterface
  interface Sender<V> {
    void send(V value) throws Exception;
  }
}
