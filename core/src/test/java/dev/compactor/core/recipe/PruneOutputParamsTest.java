package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.prune.PruningOutput;
import org.junit.jupiter.api.Test;

/** The prune stage's format / wbits / group_size keys: parsed, round-tripped and cross-checked. */
class PruneOutputParamsTest {

  private static PruneParams parse(String prune) {
    return (PruneParams)
        Recipe.parse(
                "name: t\nstages:\n  - prune: "
                    + prune
                    + "\ncalibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n")
            .stage(0)
            .params();
  }

  private static String problem(String prune) {
    InvalidRecipeException e = assertThrows(InvalidRecipeException.class, () -> parse(prune));
    return e.getMessage();
  }

  @Test
  void jointSparseGptAndSparseFormatsParseAndRoundTrip() {
    PruneParams p =
        parse("{ method: sparsegpt, pattern: \"2:4\", wbits: 4, group_size: 128, format: dense }");
    assertEquals(new PruningOutput(PruningOutput.Format.DENSE, 4, 128, true), p.output());
    assertEquals(4, p.toJson().get("wbits").asInt());
    assertEquals(128, p.toJson().get("group_size").asInt());
    assertEquals(p, PruneParams.from(p.toJson()));
    PruneParams s = parse("{ method: wanda, pattern: \"2:4\", format: sparse-24-bitmask }");
    assertEquals(PruningOutput.Format.SPARSE_24_BITMASK, s.output().format());
    assertEquals("sparse-24-bitmask", s.toJson().get("format").asText());
    assertEquals(s, PruneParams.from(s.toJson()));
    PruneParams plain = parse("{ method: magnitude, sparsity: 0.5 }");
    assertEquals(PruningOutput.DENSE, plain.output());
    assertFalse(plain.toJson().has("format"));
    assertEquals(
        PruningOutput.Format.SPARSE_BITMASK,
        parse("{ method: magnitude, sparsity: 0.3, format: sparse-bitmask }").output().format());
  }

  @Test
  void sparseFormatsAndWbitsAreRefusedForAMixtureOfExpertsAtJobStart() {
    dev.compactor.core.model.ModelConfig mixtral =
        dev.compactor.core.model.ModelConfig.fromJson(
            "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\","
                + "\"vocab_size\":257,\"hidden_size\":32,\"intermediate_size\":24,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                + "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
                + "\"num_local_experts\":6,\"num_experts_per_tok\":2,"
                + "\"tie_word_embeddings\":false,\"sliding_window\":null}");
    String recipe =
        "name: t\nstages:\n  - prune: { method: wanda, pattern: \"2:4\", format: sparse-24-bitmask }"
            + "\ncalibration: { dataset: builtin:europarl, samples: 8, seq_len: 64 }\n";
    java.util.List<String> problems =
        RecipeModelCheck.check(Recipe.parse(recipe), mixtral, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList();
    assertTrue(
        problems.stream().anyMatch(p -> p.contains("prune.format: not supported yet")),
        problems.toString());
  }

  @Test
  void combinationsNotWrittenAreRecipeProblems() {
    String m =
        problem("{ method: sparsegpt, pattern: \"2:4\", wbits: 4, format: sparse-24-bitmask }");
    assertTrue(m.contains("marlin-24"), m);
    m = problem("{ method: wanda, pattern: \"2:4\", wbits: 4 }");
    assertTrue(m.contains("wbits") && m.contains("SparseGPT"), m);
    m = problem("{ method: sparsegpt, sparsity: 0.5, format: sparse-24-bitmask }");
    assertTrue(m.contains("sparse-24-bitmask stores pattern"), m);
    m = problem("{ method: sparsegpt, pattern: \"2:4\", group_size: 64 }");
    assertTrue(m.contains("group_size") && m.contains("needs wbits"), m);
    m = problem("{ method: sparsegpt, pattern: \"2:4\", wbits: 3 }");
    assertTrue(m.contains("wbits"), m);
    m = problem("{ method: sparsegpt, pattern: \"2:4\", format: csr }");
    assertTrue(m.contains("format"), m);
  }
}
