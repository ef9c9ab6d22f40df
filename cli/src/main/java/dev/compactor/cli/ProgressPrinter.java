package dev.compactor.cli;

import dev.compactor.core.metrics.ProgressListener;
import java.io.PrintStream;

/**
 * Shows progress of long work on stderr: one line per phase that is rewritten in place on a
 * terminal, or a line every 10% otherwise (logs stay readable).
 */
final class ProgressPrinter implements ProgressListener {

  private final PrintStream err;
  private final boolean terminal;
  private String phase = "";
  private long lastPrint;
  private long lastDecile = -1;

  ProgressPrinter(PrintStream err) {
    this.err = err;
    this.terminal = System.console() != null;
  }

  @Override
  public void onProgress(String phase, long done, long total) {
    if (!phase.equals(this.phase)) {
      this.phase = phase;
      lastDecile = -1;
    }
    long now = System.nanoTime();
    boolean finished = done >= total;
    if (terminal) {
      if (finished || now - lastPrint > 200_000_000L) {
        lastPrint = now;
        err.printf("\r%s %d/%d", phase, done, total);
        if (finished) {
          err.println();
        }
      }
    } else {
      long decile = total > 0 ? done * 10 / total : 0;
      if (decile != lastDecile) {
        lastDecile = decile;
        err.printf("%s %d/%d%n", phase, done, total);
      }
    }
  }
}
