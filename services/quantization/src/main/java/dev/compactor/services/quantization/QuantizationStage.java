package dev.compactor.services.quantization;

import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.quant.pipeline.HfQuantizationPipeline;
import dev.compactor.core.quant.pipeline.QuantizationSpec;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.core.recipe.QuantizeParams.ExportFormat;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Quantizes the job's model per the recipe ({@code rtn} int8/int4, {@code nf4}, {@code fp8}) with
 * {@link HfQuantizationPipeline}: a Hugging Face directory holding the dequantized weights and a
 * {@code quantization_config}, plus the GGUF files the recipe's {@code export} asks for. The metric
 * {@code quantizedModelBytes} is the real compressed size, which evaluation and publishing report.
 */
public final class QuantizationStage implements Stage {

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    StageSpec stage = StageSpec.fromJson(StageKind.QUANTIZE, ctx.request().getParamsJson());
    QuantizationSpec spec = toSpec((QuantizeParams) stage.params());
    ctx.progress().report(0.0, "quantizing: " + spec);
    HfQuantizationPipeline.Result r =
        HfQuantizationPipeline.run(ctx.inputDir(), ctx.outputDir(), spec);
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("bits", (double) spec.bits());
    metrics.put("quantizedTensors", (double) r.quantizedTensors());
    metrics.put("quantizedParameters", (double) r.quantizedParameters());
    metrics.put("quantizedWeightBytes", (double) r.quantizedWeightBytes());
    metrics.put("quantizedModelBytes", (double) r.quantizedModelBytes());
    metrics.put("sourceWeightBytes", (double) r.sourceWeightBytes());
    metrics.put("weightRmse", r.weightRmse());
    metrics.put("ggufFiles", (double) r.ggufFiles().size());
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * Maps the recipe's parameters to the pipeline's spec.
   *
   * @throws UnsupportedOperationException for methods and exports not built yet (gptq, awq,
   *     compressed-tensors, gguf:q4_1)
   */
  public static QuantizationSpec toSpec(QuantizeParams p) {
    int group = p.groupSize() < 0 ? 0 : p.groupSize();
    List<GgmlType> gguf = new ArrayList<>();
    for (ExportFormat f : p.export()) {
      switch (f.container()) {
        case SAFETENSORS -> {
          // the Hugging Face directory is always written
        }
        case COMPRESSED_TENSORS ->
            throw new UnsupportedOperationException(
                "not supported yet: export compressed-tensors (safetensors and gguf are)");
        case GGUF -> gguf.add(ggufType(f.ggufType(), p.bits()));
      }
    }
    String method = p.method().key();
    boolean fp8 = p.method() == QuantizeParams.Method.FP8;
    return new QuantizationSpec(method, p.bits(), fp8 ? 0 : group, p.symmetric(), gguf);
  }

  private static GgmlType ggufType(String name, int bits) {
    if (name == null) {
      return bits == 8 ? GgmlType.Q8_0 : GgmlType.Q4_K;
    }
    if (name.equals("q4_1")) {
      throw new UnsupportedOperationException(
          "not supported yet: gguf:q4_1 (f32, f16, q8_0, q4_0 are; plain gguf picks q8_0/q4_k)");
    }
    return GgmlType.parse(name);
  }
}
