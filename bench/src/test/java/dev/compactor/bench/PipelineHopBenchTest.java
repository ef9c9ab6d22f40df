package dev.compactor.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Keeps {@link PipelineHopBench} from rotting: one run with the smallest counts and sizes must
 * complete and report sane figures. No timing is asserted — only that every figure is a positive,
 * finite number and that every expected row is there.
 */
class PipelineHopBenchTest {
  @TempDir Path dir;

  @Test
  void aMinimalRunCompletesAndReportsPositiveFiniteFigures() throws Exception {
    BenchOptions options =
        BenchOptions.parse(
            new String[] {
              "--stages",
              "2",
              "--jobs",
              "2",
              "--warmup",
              "1",
              "--artifact-kib",
              "4",
              "--blob-mib",
              "2",
              "--blob-rounds",
              "1",
              "--dir",
              dir.toString()
            });

    PipelineHopBench.Report report = PipelineHopBench.run(options);

    HopLatencyBench.Result hops = report.hops();
    assertEquals(List.of("prune", "quantize"), hops.stages());
    for (String row :
        List.of(
            HopSegments.FIRST_RUNNING,
            HopSegments.HOP,
            HopSegments.STAMPED_CONSUMED,
            HopSegments.CONSUMED_REQUESTED,
            HopSegments.PRODUCED_VISIBLE,
            HopSegments.VISIBLE_RUNNING,
            HopSegments.RETURNED_STAMPED,
            HopSegments.FULL_HOP,
            HopSegments.JOB)) {
      LatencyStats s = hops.segments().get(row);
      assertTrue(s != null, "missing row " + row + " in " + hops.segments().keySet());
      assertPositiveFinite(row, s);
    }
    assertEquals(2, hops.segments().get(HopSegments.FIRST_RUNNING).n());
    assertEquals(4, hops.segments().get(HopSegments.VISIBLE_RUNNING).n());
    assertEquals(5, hops.s3Overhead().size());
    hops.s3Overhead().forEach(PipelineHopBenchTest::assertPositiveFinite);

    BlobRoundTripBench.Result blobs = report.blobs();
    assertEquals(2L << 20, blobs.bytes());
    assertEquals(7, blobs.mibPerSecond().size());
    for (Map.Entry<String, Double> e : blobs.mibPerSecond().entrySet()) {
      assertPositiveFinite(e.getKey(), e.getValue());
      assertPositiveFinite(e.getKey() + " ratio", blobs.ratio(e.getKey()));
    }
    assertEquals(1.0, blobs.ratio(BlobRoundTripBench.REFERENCE), 1e-12);

    String table = PipelineHopBench.table(report);
    assertTrue(table.contains(HopSegments.HOP), table);
    assertTrue(table.contains(BlobRoundTripBench.ARTIFACT_ROUND_TRIP), table);
    JsonNode json = new ObjectMapper().readTree(PipelineHopBench.json(report));
    assertTrue(
        json.at("/hopLatency/segmentsMs").size() >= 8, json.at("/hopLatency").toPrettyString());
    assertPositiveFinite(
        "json reference",
        json.at("/blobRoundTrip/operations")
            .get(BlobRoundTripBench.REFERENCE)
            .get("mibPerSecond")
            .asDouble());
  }

  @Test
  void badFlagsAreRefusedWithWhatWasExpected() {
    IllegalArgumentException unknown =
        assertThrows(
            IllegalArgumentException.class, () -> BenchOptions.parse(new String[] {"--jbos", "3"}));
    assertTrue(unknown.getMessage().contains("unknown flag '--jbos'"), unknown.getMessage());
    IllegalArgumentException range =
        assertThrows(
            IllegalArgumentException.class,
            () -> BenchOptions.parse(new String[] {"--stages", "7"}));
    assertEquals("--stages: expected 1..6, found 7", range.getMessage());
    IllegalArgumentException notInt =
        assertThrows(
            IllegalArgumentException.class,
            () -> BenchOptions.parse(new String[] {"--blob-mib", "lots"}));
    assertEquals("--blob-mib: expected an integer, found 'lots'", notInt.getMessage());
  }

  private static void assertPositiveFinite(String what, LatencyStats s) {
    assertPositiveFinite(what + " p50", s.p50());
    assertPositiveFinite(what + " p90", s.p90());
    assertPositiveFinite(what + " max", s.max());
    assertTrue(s.p50() <= s.p90() && s.p90() <= s.max(), what + ": " + s);
  }

  private static void assertPositiveFinite(String what, double v) {
    assertTrue(
        Double.isFinite(v) && v > 0, what + ": expected a positive finite number, found " + v);
  }
}
