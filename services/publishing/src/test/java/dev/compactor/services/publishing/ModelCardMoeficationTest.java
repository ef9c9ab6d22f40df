package dev.compactor.services.publishing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.ArtifactRef;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A MoEfied model's card says how many experts run, the FLOPs and who runs it routed. */
class ModelCardMoeficationTest {

  private static ModelCard.Lineage step(String stage, Map<String, Double> metrics) {
    ArtifactRef ref =
        ArtifactRef.newBuilder()
            .setUri("s3://b/a/")
            .setSha256("ab")
            .setSizeBytes(1L)
            .setFormat("hf-safetensors")
            .build();
    return new ModelCard.Lineage(ref, stage, metrics);
  }

  @Test
  void perLayerWidthsSayOnlyCompactorLoadsIt() {
    String card =
        ModelCard.perLayerWidths(
            List.of(
                step(
                    "prune",
                    Map.of(
                        "intermediateSize.layer0", 40.0,
                        "intermediateSize.layer1", 28.0,
                        "intermediateSize.layer2", 40.0))));
    assertTrue(card.contains("MLP widths are now 40, 28, 40"), card);
    assertTrue(card.contains("Only Compactor loads this model"), card);
    assertEquals("", ModelCard.perLayerWidths(List.of(step("prune", Map.of("heads", 2.0)))));
  }

  @Test
  void theSectionComesFromThePruneStepsMetrics() {
    Map<String, Double> moefy =
        Map.of(
            "experts", 8.0,
            "expertsPerToken", 2.0,
            "flopsPerToken", 1_500_000.0,
            "denseFlopsPerToken", 3_000_000.0,
            "routerRecall", 0.8125);
    String card = ModelCard.moefication(List.of(step("ingestion", Map.of()), step("prune", moefy)));
    assertTrue(card.startsWith("\n## MoEfication\n"), card);
    assertTrue(card.contains("split into 8 experts of equal width, of which a trained"), card);
    assertTrue(card.contains("runs 2 per token"), card);
    assertTrue(card.contains("held-out calibration tokens: 0.813"), card);
    assertTrue(card.contains("1,500,000 FLOPs per token"), card);
    assertTrue(card.contains("against 3,000,000 dense (50.0 %)"), card);
    assertTrue(card.contains("Hugging Face transformers loads it as the dense model"), card);
    assertEquals(
        "",
        ModelCard.moefication(
            List.of(step("prune", Map.of("sparsity", 0.5)), step("quantize", Map.of()))));
  }
}
