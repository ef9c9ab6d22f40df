package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The typed, defaults-filled parameters of one recipe stage. Each stage service switches on the
 * concrete type; {@link #toJson()} is the form carried in {@code StageRequested.paramsJson}.
 */
public sealed interface StageParams
    permits PruneParams,
        QuantizeParams,
        DistillParams,
        FactorizeParams,
        EvaluateParams,
        PublishParams {

  /** Which stage these parameters are for. */
  StageKind kind();

  /** These parameters as JSON with snake_case keys (the recipe's spelling), defaults included. */
  ObjectNode toJson();
}
