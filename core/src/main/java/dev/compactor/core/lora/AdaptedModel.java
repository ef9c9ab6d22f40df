package dev.compactor.core.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Transformer;

/**
 * A base model evaluated with a LoRA adapter applied on the fly ({@code W + s·B·A} computed per
 * pass, the base's arrays untouched): what PEFT's unmerged model computes, for perplexity, KL and
 * generation without writing a merged copy. Owns and closes both.
 */
public final class AdaptedModel implements CausalLM {

  private final Transformer base;
  private final LoraAdapter adapter;

  public AdaptedModel(Transformer base, LoraAdapter adapter) {
    this.base = base;
    this.adapter = adapter;
  }

  public Transformer base() {
    return base;
  }

  public LoraAdapter adapter() {
    return adapter;
  }

  @Override
  public int vocabSize() {
    return base.vocabSize();
  }

  @Override
  public int maxSequenceLength() {
    return base.maxSequenceLength();
  }

  @Override
  public NDArray logits(NDManager manager, NDArray tokens) {
    return base.logits(manager, tokens, adapter.transform());
  }

  @Override
  public Decoder decoder(NDManager manager, int batch) {
    return base.decoder(manager, batch, adapter.transform());
  }

  @Override
  public void close() {
    try {
      adapter.close();
    } finally {
      base.close();
    }
  }
}
