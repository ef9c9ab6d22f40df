/**
 * Two-model cascades: a small (compressed) model answers and hands a request, or a single token, to
 * a large (baseline) model when its confidence is below a threshold; the routing curve over
 * thresholds, the threshold that meets a quality target at the lowest cost, the routing policy, and
 * a response cache measured on a query log.
 */
package dev.compactor.core.cascade;
