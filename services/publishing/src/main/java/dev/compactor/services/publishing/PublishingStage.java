package dev.compactor.services.publishing;

import dev.compactor.core.cascade.RoutingPolicy;
import dev.compactor.core.recipe.PublishParams;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StoredFile;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.Sha256;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.schemas.Topics;
import dev.compactor.services.evaluation.EvaluationReport;
import dev.compactor.services.evaluation.EvaluationStage;
import dev.compactor.services.evaluation.StoredForms;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Publishes the job's final model when it passes the recipe's quality gates: applies the gates to
 * the job's {@link EvaluationReport} of exactly this model, copies the model to {@code
 * s3://<bucket>/models/<name>/v<N>/} (N = the next free version; a job published before keeps its
 * version) with a model card (README.md: metrics vs baseline, recipe, lineage of artifact hashes),
 * and announces it with {@code ModelReady}. A failed gate fails the step with each gate's miss.
 */
public final class PublishingStage implements Stage {
  static final String PUBLICATION = "publication.json";

  /** The quantization stage's compressed-tensors export inside an artifact. */
  static final String COMPRESSED_TENSORS = "compressed-tensors/";

  /** The format {@code ModelReady.files} gives the evaluate step's routing policy. */
  static final String ROUTING_POLICY = "routing-policy";

  /** Where a LoRA step's artifact holds its PEFT adapter, and where publish puts it. */
  static final String LORA_ADAPTER_DIR = "adapter";

  /** The export format of a published PEFT LoRA adapter directory. */
  static final String LORA_FORMAT = StoredForms.PEFT_LORA;

  private static final Pattern VERSION = Pattern.compile("v(\\d+)/" + PUBLICATION);
  private static final int MAX_JSON = 16 * 1024 * 1024;

  private final BlobStore blobs;

  public PublishingStage(BlobStore blobs) {
    this.blobs = blobs;
  }

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    PublishParams p =
        (PublishParams)
            StageSpec.fromJson(StageKind.PUBLISH, ctx.request().getParamsJson()).params();
    ArtifactRef model = ctx.request().getInput();
    if (model == null) {
      throw new IllegalArgumentException("publish needs the request's input model, found none");
    }
    String bucket = EvaluationReport.bucketOf(model.getUri());
    String recipeName = Recipe.parse(ctx.request().getRecipeYaml()).name();
    String name = (p.name() == null ? recipeName : p.name()).replaceAll("[^A-Za-z0-9._-]", "-");
    EvaluationReport report = report(bucket, ctx.jobId(), model.getSha256());

    StoredForms published = StoredForms.scan(ctx.inputDir());
    if (report.sizeFormat() == null) {
      report = withMeasuredSize(report, published, ctx.baselineDir());
    }
    List<String> failed =
        QualityGates.failures(
            p.gates(), report.metrics(), report.sizeFormat(), report.energyMeasuredWith());
    if (!failed.isEmpty()) {
      throw new QualityGateException(
          "quality gates failed for " + name + ": " + String.join("; ", failed));
    }
    List<ModelCard.Lineage> lineage = lineage(bucket, model, ctx);
    S3Uri models = new S3Uri(bucket, "models/" + name + "/");
    int version = version(models, ctx.jobId(), model.getSha256());
    S3Uri target = models.resolve("v" + version + "/");
    List<ArtifactRef> exports = new ArrayList<>();
    List<ArtifactManifest.FileEntry> compressed = new ArrayList<>();
    for (Path file : files(ctx.inputDir())) {
      String rel = ctx.inputDir().relativize(file).toString().replace('\\', '/');
      blobs.putFile(target.resolve(rel), file);
      if (rel.endsWith(".gguf")) {
        exports.add(
            ArtifactRef.newBuilder()
                .setUri(target.resolve(rel).toString())
                .setSha256(Sha256.of(file))
                .setSizeBytes(Files.size(file))
                .setFormat("gguf")
                .build());
      } else if (rel.startsWith(COMPRESSED_TENSORS)) {
        compressed.add(
            new ArtifactManifest.FileEntry(
                rel.substring(COMPRESSED_TENSORS.length()), Files.size(file), Sha256.of(file)));
      }
    }
    if (!compressed.isEmpty()) {
      exports.add(
          compressedTensorsExport(
              target.resolve(COMPRESSED_TENSORS),
              compressed,
              ctx.request().getRecipeYaml(),
              model));
    }
    StringBuilder adapterCards = new StringBuilder();
    for (LoraAdapterExport a : loraAdapters(bucket, lineage, target, ctx)) {
      exports.add(a.ref());
      adapterCards.append(a.card());
    }
    StoredForms listed = published;
    String policyNote = null;
    S3Uri policyAt = EvaluationStage.routingPolicyLocation(bucket, ctx.jobId(), model.getSha256());
    if (blobs.exists(policyAt)) {
      // the evaluate step's routing policy for a cascade of this model and its baseline
      byte[] policy = blobs.getBytes(policyAt, MAX_JSON);
      blobs.putBytes(target.resolve(RoutingPolicy.FILE_NAME), policy, "application/json");
      List<StoredFile> withPolicy = new ArrayList<>(published.files());
      withPolicy.add(new StoredFile(RoutingPolicy.FILE_NAME, ROUTING_POLICY, (long) policy.length));
      listed = new StoredForms(withPolicy);
      policyNote = new String(policy, StandardCharsets.UTF_8);
    }
    String card =
        ModelCard.render(
                name,
                version,
                ctx.jobId(),
                ctx.request().getRecipeYaml(),
                report,
                listed,
                lineage,
                QualityGates.notes(p.gates(), report.metrics(), report.energyMeasuredWith()))
            + adapterCards
            + ModelCard.moefication(lineage)
            + ModelCard.perLayerWidths(lineage);
    if (policyNote != null) {
      card +=
          "\n## Routing policy\n\n`"
              + RoutingPolicy.FILE_NAME
              + "`: run this model first and hand a request to the baseline when its confidence"
              + " is low, as measured by the evaluate step (cascade.* figures above):\n\n```json\n"
              + policyNote.strip()
              + "\n```\n";
    }
    S3Uri cardUri = target.resolve("README.md");
    blobs.putBytes(cardUri, card.getBytes(StandardCharsets.UTF_8), "text/markdown");
    String publication =
        "{\"jobId\":\"" + ctx.jobId() + "\",\"modelSha256\":\"" + model.getSha256() + "\"}";
    blobs.putBytes(
        target.resolve(PUBLICATION),
        publication.getBytes(StandardCharsets.UTF_8),
        "application/json");

    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("version", (double) version);
    metrics.put("lineageLength", (double) lineage.size());
    ModelReady ready =
        ModelReady.newBuilder()
            .setJobId(ctx.jobId())
            .setName(name)
            .setVersion(Integer.toString(version))
            .setUri(target.toString())
            .setArtifact(model)
            .setExports(exports)
            .setModelCardUri(cardUri.toString())
            .setRecipeName(recipeName)
            .setMetrics(report.metrics())
            .setLineage(lineage.stream().map(ModelCard.Lineage::ref).toList())
            .setPublishedAtMs(System.currentTimeMillis())
            .setSizeBytes(report.metrics().get("sizeBytes").longValue())
            .setSizeFormat(report.sizeFormat())
            .setFiles(listed.files())
            .setLatencyMeasuredWith(report.latencyMeasuredWith())
            .setEnergyMeasuredWith(report.energyMeasuredWith())
            .build();
    return StageResult.withoutArtifact(metrics).withEvent(Topics.MODELS_READY, ready);
  }

  /**
   * A report from an evaluator before stored forms were measured carries a computed size: replace
   * it with the bytes of the files being published, so gate, card and event all use one number.
   */
  static EvaluationReport withMeasuredSize(
      EvaluationReport report, StoredForms published, Path baselineDir) throws IOException {
    StoredForms.Form smallest = published.smallest();
    long base =
        StoredForms.scan(baselineDir).files().stream().mapToLong(f -> f.getSizeBytes()).sum();
    Map<String, Double> m = new LinkedHashMap<>(report.metrics());
    m.put("sizeBytes", (double) smallest.bytes());
    m.put("baselineSizeBytes", (double) base);
    m.put("sizeRatio", (double) smallest.bytes() / base);
    return new EvaluationReport(
        report.jobId(),
        report.modelSha256(),
        report.baselineSha256(),
        m,
        report.datasetUri(),
        smallest.name(),
        published.files(),
        report.latencyMeasuredWith(),
        report.peakMemoryMeasures(),
        report.energyMeasuredWith());
  }

  private EvaluationReport report(String bucket, String jobId, String sha) {
    S3Uri where = EvaluationReport.location(bucket, jobId, sha);
    try {
      return EvaluationReport.parse(blobs.getBytes(where, MAX_JSON));
    } catch (BlobStore.BlobNotFoundException e) {
      throw new IllegalStateException(
          "publish needs this job's evaluation of model "
              + sha
              + ", found none at "
              + where
              + ": add an evaluate step before publish",
          e);
    }
  }

  /** Artifacts from the ingested baseline to {@code model}, following manifest parents. */
  private List<ModelCard.Lineage> lineage(String bucket, ArtifactRef model, StageContext ctx) {
    List<ModelCard.Lineage> out = new ArrayList<>();
    ArtifactManifest m = ctx.inputManifest().orElseGet(() -> manifest(bucket, model.getSha256()));
    ArtifactRef ref = model;
    for (int guard = 0; guard < 1000; guard++) {
      out.add(new ModelCard.Lineage(ref, m.provenance().stage(), m.provenance().metrics()));
      String parent = m.provenance().parentSha256();
      if (parent == null) {
        break;
      }
      m = manifest(bucket, parent);
      ref =
          ArtifactRef.newBuilder()
              .setUri(new S3Uri(bucket, "artifacts/" + parent + "/").toString())
              .setSha256(parent)
              .setSizeBytes(m.totalBytes())
              .setFormat(m.format())
              .build();
    }
    Collections.reverse(out);
    return out;
  }

  private ArtifactManifest manifest(String bucket, String sha) {
    byte[] json =
        blobs.getBytes(
            new S3Uri(bucket, "artifacts/" + sha + "/" + ArtifactManifest.FILE_NAME), MAX_JSON);
    String found = Sha256.of(json);
    if (!found.equals(sha)) {
      throw new IllegalStateException(
          "lineage: manifest of artifact " + sha + " has sha256 " + found + " (corrupt store?)");
    }
    return ArtifactManifest.parse(json);
  }

  /** This job's version if it published this model before, else one past the highest. */
  private int version(S3Uri models, String jobId, String sha) {
    int highest = 0;
    for (BlobStore.BlobInfo b : blobs.list(models)) {
      Matcher m = VERSION.matcher(b.uri().key().substring(models.key().length()));
      if (!m.matches()) {
        continue;
      }
      int v = Integer.parseInt(m.group(1));
      String pub = new String(blobs.getBytes(b.uri(), MAX_JSON), StandardCharsets.UTF_8);
      if (pub.contains("\"jobId\":\"" + jobId + "\"") && pub.contains(sha)) {
        return v;
      }
      highest = Math.max(highest, v);
    }
    return highest + 1;
  }

  /**
   * Publishes a manifest for the {@code compressed-tensors/} directory of the artifact (as {@link
   * dev.compactor.runtime.ArtifactStore} does for whole artifacts) and returns its reference, so a
   * consumer can download and verify the vLLM checkpoint on its own.
   */
  private ArtifactRef compressedTensorsExport(
      S3Uri prefix, List<ArtifactManifest.FileEntry> files, String recipe, ArtifactRef model) {
    ArtifactManifest manifest =
        new ArtifactManifest(
            "compressed-tensors",
            files,
            new ArtifactManifest.Provenance("quantize", recipe, model.getSha256(), Map.of()));
    byte[] json = manifest.toJson();
    blobs.putBytes(prefix.resolve(ArtifactManifest.FILE_NAME), json, "application/json");
    return ArtifactRef.newBuilder()
        .setUri(prefix.toString())
        .setSha256(Sha256.of(json))
        .setSizeBytes(manifest.totalBytes())
        .setFormat("compressed-tensors")
        .build();
  }

  /** A published LoRA adapter: its export reference and its model card section. */
  record LoraAdapterExport(ArtifactRef ref, String card) {}

  /**
   * The PEFT adapters of the job's LoRA steps ({@code distill: {lora: ...}}, stored in their
   * artifact's {@code adapter/}), copied to {@code <target>/adapter/} (one LoRA step) or {@code
   * <target>/adapter-<lineage index>/} (several), each with its own manifest like the
   * compressed-tensors export, so that a consumer can download and verify it alone. The model's
   * weights already include them (the step merged them); the card says so.
   */
  private List<LoraAdapterExport> loraAdapters(
      String bucket, List<ModelCard.Lineage> lineage, S3Uri target, StageContext ctx)
      throws IOException {
    String prefix = LORA_ADAPTER_DIR + "/";
    List<Integer> steps = new ArrayList<>();
    List<ArtifactManifest> manifests = new ArrayList<>();
    for (int i = 0; i < lineage.size(); i++) {
      if (!StageKind.DISTILL.recipeKey().equals(lineage.get(i).stage())) {
        continue;
      }
      ArtifactManifest m = manifest(bucket, lineage.get(i).ref().getSha256());
      if (m.files().stream().anyMatch(f -> f.path().startsWith(prefix))) {
        steps.add(i);
        manifests.add(m);
      }
    }
    List<LoraAdapterExport> out = new ArrayList<>();
    for (int k = 0; k < steps.size(); k++) {
      ModelCard.Lineage l = lineage.get(steps.get(k));
      String dir = steps.size() == 1 ? LORA_ADAPTER_DIR : LORA_ADAPTER_DIR + "-" + steps.get(k);
      S3Uri source = S3Uri.parse(l.ref().getUri());
      S3Uri to = target.resolve(dir + "/");
      List<ArtifactManifest.FileEntry> files = new ArrayList<>();
      byte[] provenance = null;
      Path local = Files.createDirectories(ctx.workDir().resolve("lora-" + steps.get(k)));
      for (ArtifactManifest.FileEntry f : manifests.get(k).files()) {
        if (!f.path().startsWith(prefix) || f.path().substring(prefix.length()).contains("/")) {
          continue;
        }
        String rel = f.path().substring(prefix.length());
        Path file = local.resolve(rel);
        blobs.getFile(source.resolve(f.path()), file);
        String sha = Sha256.of(file);
        if (!sha.equals(f.sha256())) {
          throw new IllegalStateException(
              "LoRA adapter "
                  + source.resolve(f.path())
                  + ": sha256 "
                  + sha
                  + ", manifest says "
                  + f.sha256());
        }
        blobs.putFile(to.resolve(rel), file);
        files.add(new ArtifactManifest.FileEntry(rel, f.size(), sha));
        if (rel.equals("compactor.json")) {
          provenance = Files.readAllBytes(file);
        }
      }
      ArtifactManifest manifest =
          new ArtifactManifest(
              LORA_FORMAT,
              files,
              new ArtifactManifest.Provenance(
                  l.stage(), ctx.request().getRecipeYaml(), l.ref().getSha256(), l.metrics()));
      byte[] json = manifest.toJson();
      blobs.putBytes(to.resolve(ArtifactManifest.FILE_NAME), json, "application/json");
      ArtifactRef ref =
          ArtifactRef.newBuilder()
              .setUri(to.toString())
              .setSha256(Sha256.of(json))
              .setSizeBytes(manifest.totalBytes())
              .setFormat(LORA_FORMAT)
              .build();
      out.add(new LoraAdapterExport(ref, ModelCard.loraAdapter(dir, steps.get(k), l, provenance)));
    }
    return out;
  }

  private static List<Path> files(Path dir) throws IOException {
    try (Stream<Path> s = Files.walk(dir)) {
      return s.filter(Files::isRegularFile).sorted().toList();
    }
  }

  /** The model missed one or more of the recipe's quality gates. */
  public static final class QualityGateException extends IllegalStateException {
    public QualityGateException(String message) {
      super(message);
    }
  }
}
