package dev.compactor.cli.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The bayesian goal read from evaluations: bounds from the baseline's figures, in each direction.
 */
class SweepTargetTest {

  @Test
  void boundsComeFromTheBaselineEachEvaluationCarries() {
    // eval: baseline perplexity 3.0, baseline task acc 0.9
    var e = FrontierReportTest.eval(500_000, 3.1, 0.02, 0.95, 0.85);
    var ppl = SweepCommand.Target.of(FrontierReport.quality("perplexity"), 0.05);
    assertArrayEquals(new double[] {500_000, 3.1, 3.15}, ppl.figures(e), 1e-12);
    // maximised: negated, so the proposer's "≤ bound" is acc ≥ base·(1 − within)
    var top1 = SweepCommand.Target.of(FrontierReport.quality("top1"), 0.1);
    assertArrayEquals(new double[] {500_000, -0.95, -0.9}, top1.figures(e), 1e-12);
    var task = SweepCommand.Target.of(FrontierReport.quality("task.copy"), 0.1);
    assertArrayEquals(new double[] {500_000, -0.85, -0.81}, task.figures(e), 1e-12);
    assertNull(SweepCommand.Target.of(FrontierReport.quality("task.other"), 0.1).figures(e));
    assertNull(ppl.figures(null));
    assertTrue(
        assertThrows(
                UnsupportedOperationException.class,
                () -> SweepCommand.Target.of(FrontierReport.quality("kl"), 0.05))
            .getMessage()
            .startsWith("not supported yet: mode: bayesian with --quality kl"));
  }

  @Test
  void summaryNamesTheSmallestJobWithinTheBound() {
    var ppl = SweepCommand.Target.of(FrontierReport.quality("perplexity"), 0.05);
    Map<String, FrontierReport.Row> done = new LinkedHashMap<>();
    done.put("a", FrontierReportTest.row("a", FrontierReportTest.eval(400_000, 3.3, 0, 0.9, 0.8)));
    done.put("b", FrontierReportTest.row("b", FrontierReportTest.eval(600_000, 3.1, 0, 0.9, 0.8)));
    done.put("c", FrontierReportTest.row("c", FrontierReportTest.eval(700_000, 3.05, 0, 0.9, 0.8)));
    String s =
        SweepCommand.bayesianSummary(
            dev.compactor.core.frontier.SweepSpec.parse(
                "name: s\nbase: b\nvary:\n  stages[0].prune.sparsity: [0.3, 0.5, 0.7]\n"
                    + "mode: bayesian\nbudget: 3\nseed: 4\n",
                f ->
                    "name: b\nstages:\n  - prune: { method: magnitude, sparsity: 0.3 }\n"
                        + "  - evaluate: { perplexity: { seq_len: 64 } }\n"),
            3,
            ppl,
            done,
            List.of("`a`: seeded random start", "`b`: seeded random start", "`c`: acquisition 1"));
    assertTrue(s.contains("perplexity ≤ 3.1500"), s);
    assertTrue(s.contains("2 of the jobs run met it, the smallest **`b`** (600,000 bytes)"), s);
    assertTrue(s.contains("3. `c`: acquisition 1"), s);
    assertTrue(s.contains("3 jobs of a budget of 3 (seed 4)"), s);
  }
}
