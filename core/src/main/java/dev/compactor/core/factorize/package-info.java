/**
 * Low-rank factorization of decoder linears: {@link dev.compactor.core.factorize.Factorization#run}
 * is the entry (used by {@code compactor factorize}). {@link dev.compactor.core.factorize.Svd} is a
 * plain-Java double-precision SVD (DJL has none) on {@link
 * dev.compactor.core.factorize.SymmetricEigen}; {@link
 * dev.compactor.core.factorize.LowRankFactorizer} truncates one weight by plain SVD or SVD-LLM's
 * whitening; {@link dev.compactor.core.factorize.RankRule} picks each matrix's rank; the output
 * format ({@code X.u.weight}, {@code X.v.weight}, config.json's {@code compactor_low_rank}) is read
 * by {@link dev.compactor.core.model.ModelConfig#lowRank()} and run by the model's forward.
 */
package dev.compactor.core.factorize;
