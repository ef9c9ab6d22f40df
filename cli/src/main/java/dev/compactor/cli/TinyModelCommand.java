package dev.compactor.cli;

import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tiny.TrainingReport;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code compactor tiny-model}: builds (or reuses) the byte-level reference Llama trained on
 * English Europarl text and prints where it is and how good it is.
 */
final class TinyModelCommand implements Command {

  @Override
  public String name() {
    return "tiny-model";
  }

  @Override
  public String summary() {
    return "train (or reuse) the tiny byte-level reference Llama";
  }

  @Override
  public String usage() {
    return "[--out DIR]   (default: " + TinyReferenceModel.defaultDir() + ")";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("out"), Set.of());
    Path dir =
        args.present("out") ? Path.of(args.required("out")) : TinyReferenceModel.defaultDir();
    Path built = TinyReferenceModel.buildOrReuse(dir, new ProgressPrinter(err));
    TrainingReport r = TinyReferenceModel.report(built);
    out.printf("model             %s%n", built.toAbsolutePath());
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
