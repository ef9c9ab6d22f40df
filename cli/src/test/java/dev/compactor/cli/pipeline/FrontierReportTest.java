package dev.compactor.cli.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.frontier.SweepSpec;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.EvaluationMetrics;
import dev.compactor.events.TaskScore;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;

class FrontierReportTest {

  static EvaluationCompleted eval(long size, double ppl, double kl, double top1, double taskAcc) {
    ArtifactRef ref =
        ArtifactRef.newBuilder()
            .setUri("s3://b/artifacts/x/")
            .setSha256("a".repeat(64))
            .setSizeBytes(size)
            .setFormat("hf-safetensors")
            .build();
    return EvaluationCompleted.newBuilder()
        .setJobId("j")
        .setStep(3)
        .setModel(ref)
        .setBaseline(ref)
        .setMetrics(
            EvaluationMetrics.newBuilder()
                .setPerplexity(ppl)
                .setBaselinePerplexity(3.0)
                .setKlDivergence(kl)
                .setTop1Agreement(top1)
                .setSizeBytes(size)
                .setBaselineSizeBytes(1_000_000)
                .build())
        .setExtra(Map.of("energyJoulesPerToken", size / 1e6))
        .setTasks(
            List.of(
                TaskScore.newBuilder()
                    .setTask("copy")
                    .setDocuments(10)
                    .setAcc(taskAcc)
                    .setBaselineAcc(0.9)
                    .build()))
        .setCompletedAtMs(1)
        .build();
  }

  static FrontierReport.Row row(String name, EvaluationCompleted e) {
    return new FrontierReport.Row(name, "x", e == null ? "FAILED" : "SUCCEEDED", "boom", e, 1);
  }

  @Test
  void tableMarksFrontiersAndTheChoiceAndReportsFailures() throws Exception {
    List<FrontierReport.Row> rows =
        List.of(
            row("big", eval(500_000, 3.05, 0.01, 0.95, 0.9)),
            row("mid", eval(300_000, 3.15, 0.03, 0.90, 0.8)),
            row("midWorse", eval(300_000, 3.40, 0.05, 0.85, 0.7)),
            row("small", eval(200_000, 3.60, 0.10, 0.80, 0.6)),
            row("crashed", null));
    FrontierReport r =
        new FrontierReport("s", "tiny", rows, FrontierReport.quality("perplexity"), 0.05);
    // best 3.05, bound 3.2025: mid is the smallest within it
    assertEquals("mid", r.choice().orElseThrow().chosen().label());
    assertTrue(r.sizeQualityFrontier().isOnFrontier("small"));
    assertFalse(r.sizeQualityFrontier().isOnFrontier("midWorse"));
    String md = r.markdown();
    assertTrue(md.contains("| 2 | `mid` | x | 300,000 | 0.300 |"), md);
    assertTrue(md.contains("F A chosen | SUCCEEDED |"), md);
    assertTrue(md.contains("| FAILED: boom |"), md);
    assertTrue(md.contains("copy acc"), "task column: " + md);
    assertTrue(md.contains("energyJoulesPerToken"), "energy column when measured: " + md);
    assertTrue(md.contains("chosen: **`mid`** (300,000 bytes"), md);
    Document svg =
        DocumentBuilderFactory.newInstance()
            .newDocumentBuilder()
            .parse(new ByteArrayInputStream(r.svg().getBytes(StandardCharsets.UTF_8)));
    assertEquals("svg", svg.getDocumentElement().getTagName());
    int points = 0;
    for (int i = 0; i < svg.getElementsByTagName("circle").getLength(); i++) {
      String cls =
          ((org.w3c.dom.Element) svg.getElementsByTagName("circle").item(i)).getAttribute("class");
      points += cls.startsWith("point ") ? 1 : 0;
    }
    assertEquals(4, points, "the failed job is not plotted");
    // the key line is cut to the plot's width; the table above carries the whole reason
    assertTrue(r.svg().contains("5  crashed  (not plotted: no sizeBytes, no per"), r.svg());

    FrontierReport byTask =
        new FrontierReport("s", "tiny", rows, FrontierReport.quality("task.copy"), 0.2);
    // best 0.9, bound 0.72: mid (0.8) is smallest; midWorse (0.7) is out
    assertEquals("mid", byTask.choice().orElseThrow().chosen().label());
    assertThrows(IllegalArgumentException.class, () -> FrontierReport.quality("bleu"));
  }

  @Test
  void theShippedSweepHasTwelveOrMoreRunnableRecipes() throws Exception {
    Path spec = Path.of("..", "recipes", "sweeps", "tiny-frontier.yaml");
    assertTrue(Files.isRegularFile(spec));
    List<SweepSpec.Point> points = SweepSpec.parse(spec).expand();
    long runnable = points.stream().filter(p -> SweepCommand.problem(p) == null).count();
    assertTrue(runnable >= 12, "runnable " + runnable);
    SweepSpec.Point awq8 =
        points.stream().filter(p -> p.name().endsWith("bits8-methodawq")).findFirst().orElseThrow();
    assertTrue(SweepCommand.problem(awq8).contains("awq supports bits 4 only"));
    assertEquals("channels 0.125, bits 4, method rtn", SweepCommand.assignment(points.get(0)));
  }

  @Test
  void theShippedBayesianSweepHasMoreValidCandidatesThanItsBudget() throws Exception {
    SweepSpec spec = SweepSpec.parse(Path.of("..", "recipes", "sweeps", "tiny-bayesian.yaml"));
    assertEquals(SweepSpec.Mode.BAYESIAN, spec.mode());
    long runnable = spec.expand().stream().filter(p -> SweepCommand.problem(p) == null).count();
    assertEquals(20, runnable);
    assertTrue(spec.budget() < runnable, "budget " + spec.budget());
  }
}
