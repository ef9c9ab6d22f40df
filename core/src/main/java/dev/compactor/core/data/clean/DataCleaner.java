package dev.compactor.core.data.clean;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Cleans calibration and distillation text: runs the rules of a {@link CleanSpec} over documents in
 * order and returns the kept ones (in input order) with a {@link CleanReport}. Deterministic: the
 * same input and spec keep the same documents.
 */
public final class DataCleaner {

  /** The kept documents and the report. */
  public record Result(List<Document> kept, CleanReport report) {}

  private DataCleaner() {}

  /** Cleans {@code docs}; {@code scorer} is needed only when the spec has perplexity bounds. */
  public static Result clean(List<Document> docs, CleanSpec spec, PerplexityFilter.Scorer scorer) {
    if (!spec.perplexity().isOff() && scorer == null) {
      throw new IllegalArgumentException("the perplexity filter needs a reference model");
    }
    Map<String, Integer> dropped = new LinkedHashMap<>();
    Map<String, List<CleanReport.Example>> examples = new LinkedHashMap<>();
    List<CleanReport.Cluster> clusters = new ArrayList<>();

    List<DocumentFilter> filters = new ArrayList<>();
    if (!spec.length().isOff()) {
      filters.add(spec.length());
    }
    if (spec.language() != null) {
      filters.add(spec.language());
    }
    if (spec.repetition() != null) {
      filters.add(spec.repetition());
    }
    List<Document> live = new ArrayList<>();
    for (Document d : docs) {
      Optional<DocumentFilter.Drop> drop = Optional.empty();
      for (DocumentFilter f : filters) {
        drop = f.check(d.text());
        if (drop.isPresent()) {
          break;
        }
      }
      if (drop.isPresent()) {
        count(dropped, examples, drop.get().reason(), d, drop.get().detail());
      } else {
        live.add(d);
      }
    }
    if (spec.exactDedup()) {
      Deduplicator.Result r = Deduplicator.exact(texts(live));
      live = dropDuplicates(live, r, "dedup.exact", "exact", dropped, examples, clusters);
    }
    LshBands bands = null;
    if (spec.minhashDedup()) {
      bands = spec.effectiveBands();
      Deduplicator.Result r =
          Deduplicator.nearDuplicates(
              texts(live),
              new MinHash(spec.numPerm(), spec.seed()),
              bands,
              spec.shingles(),
              spec.shingleSize(),
              spec.jaccard());
      live = dropDuplicates(live, r, "dedup.minhash", "minhash", dropped, examples, clusters);
    }
    if (!spec.perplexity().isOff()) {
      PerplexityFilter.Result r = spec.perplexity().apply(texts(live), scorer);
      List<Document> next = new ArrayList<>();
      for (int i = 0; i < live.size(); i++) {
        DocumentFilter.Drop drop = r.drops().get(i);
        if (drop == null) {
          next.add(live.get(i));
        } else {
          count(dropped, examples, drop.reason(), live.get(i), drop.detail());
        }
      }
      live = next;
    }
    int clusterCount = clusters.size();
    clusters.sort(
        Comparator.comparingInt(CleanReport.Cluster::size)
            .reversed()
            .thenComparingInt(CleanReport.Cluster::kept));
    List<CleanReport.Cluster> top =
        List.copyOf(clusters.subList(0, Math.min(CleanReport.CLUSTERS, clusters.size())));
    return new Result(
        List.copyOf(live),
        new CleanReport(docs.size(), live.size(), dropped, examples, top, clusterCount, bands));
  }

  private static List<Document> dropDuplicates(
      List<Document> live,
      Deduplicator.Result r,
      String reason,
      String kind,
      Map<String, Integer> dropped,
      Map<String, List<CleanReport.Example>> examples,
      List<CleanReport.Cluster> clusters) {
    List<Document> next = new ArrayList<>();
    for (int i = 0; i < live.size(); i++) {
      Integer of = r.duplicateOf().get(i);
      if (of == null) {
        next.add(live.get(i));
        continue;
      }
      Double s = r.similarity().get(i);
      String detail =
          "duplicate of #"
              + live.get(of).index()
              + (s == null ? "" : String.format(Locale.ROOT, " (est. Jaccard %.2f)", s));
      count(dropped, examples, reason, live.get(i), detail);
    }
    r.clusters()
        .forEach(
            (keptAt, members) ->
                clusters.add(
                    new CleanReport.Cluster(
                        live.get(keptAt).index(),
                        members.size() + 1,
                        kind,
                        CleanReport.preview(live.get(keptAt).text()))));
    return next;
  }

  private static void count(
      Map<String, Integer> dropped,
      Map<String, List<CleanReport.Example>> examples,
      String reason,
      Document d,
      String detail) {
    dropped.merge(reason, 1, Integer::sum);
    List<CleanReport.Example> list = examples.computeIfAbsent(reason, k -> new ArrayList<>());
    if (list.size() < CleanReport.EXAMPLES) {
      list.add(new CleanReport.Example(d.index(), detail, CleanReport.preview(d.text())));
    }
  }

  private static List<String> texts(List<Document> docs) {
    List<String> out = new ArrayList<>(docs.size());
    for (Document d : docs) {
      out.add(d.text());
    }
    return out;
  }
}
