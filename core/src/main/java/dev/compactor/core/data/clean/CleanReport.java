package dev.compactor.core.data.clean;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What cleaning dropped and why.
 *
 * @param input documents read
 * @param kept documents kept
 * @param dropped per reason code, how many documents it dropped (in the order the rules run)
 * @param examples per reason code, the first few documents it dropped
 * @param clusters duplicate clusters (exact and near) with two or more members, largest first
 * @param clusterCount how many such clusters there were in all
 * @param bands the LSH banding used, or {@code null} without near dedup
 */
public record CleanReport(
    int input,
    int kept,
    Map<String, Integer> dropped,
    Map<String, List<Example>> examples,
    List<Cluster> clusters,
    int clusterCount,
    LshBands bands) {

  /** Examples kept per reason. */
  public static final int EXAMPLES = 3;

  /** Clusters listed. */
  public static final int CLUSTERS = 10;

  /** Characters of a document shown in an example. */
  public static final int PREVIEW = 120;

  /** A dropped document: its input index, why, and its first {@link #PREVIEW} characters. */
  public record Example(int index, String detail, String preview) {}

  /**
   * A duplicate cluster.
   *
   * @param kept input index of the document kept
   * @param size documents in the cluster, the kept one included
   * @param kind {@code exact} or {@code minhash}
   * @param preview the kept document's start
   */
  public record Cluster(int kept, int size, String kind, String preview) {}

  /** Documents dropped in all. */
  public int droppedTotal() {
    return input - kept;
  }

  /** Cuts {@code text} to {@link #PREVIEW} characters on one line. */
  static String preview(String text) {
    String t = text.replaceAll("\\s+", " ").strip();
    return t.length() <= PREVIEW ? t : t.substring(0, PREVIEW) + "…";
  }

  /** As a JSON object. */
  public ObjectNode toJson(ObjectMapper json) {
    ObjectNode o = json.createObjectNode();
    o.put("input", input);
    o.put("kept", kept);
    o.put("dropped", droppedTotal());
    ObjectNode reasons = o.putObject("dropped_by_reason");
    dropped.forEach(reasons::put);
    ObjectNode ex = o.putObject("examples");
    examples.forEach(
        (reason, list) -> {
          ArrayNode a = ex.putArray(reason);
          for (Example e : list) {
            a.addObject()
                .put("index", e.index())
                .put("detail", e.detail())
                .put("text", e.preview());
          }
        });
    o.put("clusters", clusterCount);
    ArrayNode cl = o.putArray("largest_clusters");
    for (Cluster c : clusters) {
      cl.addObject()
          .put("kept", c.kept())
          .put("size", c.size())
          .put("kind", c.kind())
          .put("text", c.preview());
    }
    if (bands != null) {
      o.putObject("lsh").put("bands", bands.bands()).put("rows", bands.rows());
    }
    return o;
  }

  /** As text for a terminal. */
  public String toText() {
    StringBuilder s = new StringBuilder();
    s.append(
        String.format(
            Locale.ROOT,
            "documents: %d read, %d kept, %d dropped (%.1f %%)%n",
            input,
            kept,
            droppedTotal(),
            input == 0 ? 0.0 : 100.0 * droppedTotal() / input));
    if (bands != null) {
      s.append(
          String.format(
              Locale.ROOT, "minhash lsh: %d bands x %d rows%n", bands.bands(), bands.rows()));
    }
    dropped.forEach(
        (reason, n) -> {
          s.append(String.format(Locale.ROOT, "  %-32s %6d%n", reason, n));
          for (Example e : examples.getOrDefault(reason, List.of())) {
            s.append(
                String.format(
                    Locale.ROOT, "      #%d (%s): %s%n", e.index(), e.detail(), e.preview()));
          }
        });
    s.append(String.format(Locale.ROOT, "duplicate clusters: %d%n", clusterCount));
    for (Cluster c : clusters) {
      s.append(
          String.format(
              Locale.ROOT,
              "  %-7s size %4d, kept #%d: %s%n",
              c.kind(),
              c.size(),
              c.kept(),
              c.preview()));
    }
    return s.toString();
  }
}
