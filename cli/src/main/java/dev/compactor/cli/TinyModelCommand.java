package dev.compactor.cli;

import dev.compactor.core.tiny.DeepReferenceModel;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tiny.TrainingReport;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code compactor tiny-model}: the byte-level reference Llama trained on English Europarl text.
 * Without options it names the copy that ships in the repository; {@code --out} copies it there;
 * {@code --train} retrains it from its recipe (minutes) instead, into {@code --out} or the cache.
 * {@code --model deep-llama-v1} does the same for the 8-layer reference Llama.
 */
final class TinyModelCommand implements Command {

  @Override
  public String name() {
    return "tiny-model";
  }

  @Override
  public String summary() {
    return "the tiny byte-level reference Llama (shipped in "
        + TinyReferenceModel.SHIPPED_DIR
        + "; --train retrains it)";
  }

  @Override
  public String usage() {
    return "[--model "
        + TinyReferenceModel.RECIPE.name()
        + "|"
        + DeepReferenceModel.RECIPE.name()
        + "] [--out DIR] [--train]   (--out: copy the shipped model there; --train: retrain it"
        + " into --out, default "
        + TinyReferenceModel.defaultDir()
        + " or "
        + DeepReferenceModel.defaultDir()
        + ")";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("out", "model"), Set.of("train"));
    String model = args.string("model", TinyReferenceModel.RECIPE.name());
    Path dir;
    if (model.equals(DeepReferenceModel.RECIPE.name())) {
      if (args.has("train")) {
        Path target =
            args.present("out") ? Path.of(args.required("out")) : DeepReferenceModel.defaultDir();
        dir = DeepReferenceModel.buildOrReuse(target, new ProgressPrinter(err));
      } else if (args.present("out")) {
        dir = copy(DeepReferenceModel.shipped(), Path.of(args.required("out")));
      } else {
        dir = DeepReferenceModel.shipped();
      }
    } else if (!model.equals(TinyReferenceModel.RECIPE.name())) {
      throw new UsageException(
          "--model must be "
              + TinyReferenceModel.RECIPE.name()
              + " or "
              + DeepReferenceModel.RECIPE.name()
              + ", found "
              + model);
    } else if (args.has("train")) {
      Path target =
          args.present("out") ? Path.of(args.required("out")) : TinyReferenceModel.defaultDir();
      dir = TinyReferenceModel.buildOrReuse(target, new ProgressPrinter(err));
    } else if (args.present("out")) {
      dir = copy(TinyReferenceModel.shipped(), Path.of(args.required("out")));
    } else {
      dir = TinyReferenceModel.shipped();
    }
    TrainingReport r = TinyReferenceModel.report(dir);
    out.printf("model             %s%n", dir.toAbsolutePath());
    out.printf("parameters        %d%n", r.parameters());
    out.printf("training time     %.1f s%n", r.trainingSeconds());
    out.printf(
        "validation        ppl %.3f, %.3f bits/byte (byte unigram %.3f)%n",
        r.validationPerplexity(), r.validationBitsPerByte(), r.validationUnigramBitsPerByte());
    out.printf(
        "test              ppl %.3f, %.3f bits/byte (byte unigram %.3f)%n",
        r.testPerplexity(), r.testBitsPerByte(), r.testUnigramBitsPerByte());
    return 0;
  }

  private static Path copy(Path shipped, Path out) throws Exception {
    try {
      return TinyReferenceModel.copyShipped(shipped, out);
    } catch (IllegalArgumentException e) {
      throw new UsageException("--out " + e.getMessage());
    }
  }
}
