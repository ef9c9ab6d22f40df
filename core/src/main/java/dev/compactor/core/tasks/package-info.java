/**
 * Task accuracy in the manner of EleutherAI's lm-evaluation-harness: multiple-choice documents
 * scored by the log-likelihood of each choice ({@code acc}, length-normalised {@code acc_norm}),
 * continuation documents by whether greedy decoding reproduces the continuation ({@code acc}) and
 * its perplexity, with lm-eval's standard errors; plus tasks built from the bundled corpus.
 */
package dev.compactor.core.tasks;
