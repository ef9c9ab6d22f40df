package dev.compactor.cli;

import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tiny.TrainingReport;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code compactor tiny-model}: the byte-level reference Llama trained on English Europarl text.
 * Without options it names the copy that ships in the repository; {@code --out} copies it there;
 * {@code --train} retrains it from its recipe (minutes) instead, into {@code --out} or the cache.
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
    return "[--out DIR] [--train]   (--out: copy the shipped model there; --train: retrain it into"
        + " --out, default "
        + TinyReferenceModel.defaultDir()
        + ")";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("out"), Set.of("train"));
    Path dir;
    if (args.has("train")) {
      Path target =
          args.present("out") ? Path.of(args.required("out")) : TinyReferenceModel.defaultDir();
      dir = TinyReferenceModel.buildOrReuse(target, new ProgressPrinter(err));
    } else if (args.present("out")) {
      try {
        dir = TinyReferenceModel.copyShipped(Path.of(args.required("out")));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--out " + e.getMessage());
      }
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
}
