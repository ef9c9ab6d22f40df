package dev.compactor.runtime;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.StageRequested;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/**
 * Everything one run of a {@link Stage} gets: the request, its parsed recipe parameters, the input
 * artifact already downloaded and verified, a fresh output directory, scratch space, the compute
 * device, a progress reporter and a cancellation flag; plus access to the baseline model and to any
 * {@code s3://} or {@code file://} source the request names.
 *
 * <p>{@link StageWorker} builds one per job; tests and the CLI can build one with {@link
 * #builder(StageRequested)} to run a stage without Kafka.
 */
public final class StageContext {
  private final StageRequested request;
  private final StageParams params;
  private final Path inputDir;
  private final ArtifactManifest inputManifest;
  private final Path outputDir;
  private final Path workDir;
  private final String device;
  private final long memoryBudgetBytes;
  private final ProgressReporter progress;
  private final BooleanSupplier cancelled;
  private final BlobStore blobs;
  private final ArtifactStore artifacts;
  private final SourcePolicy sources;
  private final AtomicInteger fetches = new AtomicInteger();
  private Path baselineDir;

  private StageContext(Builder b) {
    this.request = b.request;
    this.params = StageParams.parse(request.getParamsJson());
    this.inputDir = Objects.requireNonNull(b.inputDir, "inputDir");
    this.inputManifest = b.inputManifest;
    this.outputDir = Objects.requireNonNull(b.outputDir, "outputDir");
    this.workDir = Objects.requireNonNull(b.workDir, "workDir");
    this.device = b.device;
    this.memoryBudgetBytes = b.memoryBudgetBytes;
    this.progress = b.progress;
    this.cancelled = b.cancelled;
    this.blobs = b.blobs;
    this.artifacts = b.artifacts;
    this.baselineDir = b.baselineDir;
    this.sources = b.sources;
  }

  /** Starts a context for {@code request}; directories default to none and must be set. */
  public static Builder builder(StageRequested request) {
    return new Builder(request);
  }

  /** The request being served. */
  public StageRequested request() {
    return request;
  }

  /** Shorthand for {@code request().getJobId()}. */
  public String jobId() {
    return request.getJobId();
  }

  /** The recipe's settings for this stage. */
  public StageParams params() {
    return params;
  }

  /** The verified input artifact's files; an empty directory when the request has no input. */
  public Path inputDir() {
    return inputDir;
  }

  /** The input artifact's manifest (provenance, file hashes), when there is an input. */
  public Optional<ArtifactManifest> inputManifest() {
    return Optional.ofNullable(inputManifest);
  }

  /** A fresh, empty directory for the output artifact's files. */
  public Path outputDir() {
    return outputDir;
  }

  /** Scratch space, deleted after the job. */
  public Path workDir() {
    return workDir;
  }

  /**
   * Bytes one step may use on this worker ({@link StageConfig#MEMORY_BUDGET_BYTES}): stages refuse
   * a step whose estimate is above it before they load anything.
   */
  public long memoryBudgetBytes() {
    return memoryBudgetBytes;
  }

  /** The compute device: {@code cpu}, {@code gpu} or {@code cuda:<n>}. */
  public String device() {
    return device;
  }

  /** Where to report progress. */
  public ProgressReporter progress() {
    return progress;
  }

  /** True once the job was taken away from this worker; stop as soon as convenient. */
  public boolean isCancelled() {
    return cancelled.getAsBoolean() || Thread.currentThread().isInterrupted();
  }

  /**
   * Throws if the job was taken away; call between units of work.
   *
   * @throws CancellationException when cancelled
   */
  public void checkCancelled() {
    if (isCancelled()) {
      throw new CancellationException("job " + jobId() + " cancelled: its partition moved");
    }
  }

  /**
   * The uncompressed baseline model of this job, downloaded and verified on first use.
   *
   * @throws IllegalStateException when the request names no baseline
   */
  public synchronized Path baselineDir() throws IOException {
    if (baselineDir != null) {
      return baselineDir;
    }
    ArtifactRef ref = request.getBaseline();
    if (ref == null) {
      throw new IllegalStateException(
          "stage " + request.getStage() + " needs the baseline model, but the request has none");
    }
    Path dir = workDir.resolve("baseline");
    requireArtifacts().download(ref, dir);
    baselineDir = dir;
    return dir;
  }

  /**
   * Makes a source named by a request ({@code modelUri}, {@code calibrationUri}) available locally:
   * a {@code file://} path is returned as is; an {@code s3://} object is downloaded to a file, an
   * {@code s3://} prefix (ending in '/') to a directory of all objects under it. Only sources the
   * context's {@link SourcePolicy} allows are read: this is the check that counts, since the
   * orchestrator's at submission cannot see symlinks on the workers' disks.
   *
   * @throws IllegalArgumentException for other schemes or a missing local path
   * @throws SourcePolicy.SourceRefusedException for a source outside the policy
   */
  public Path fetch(String uri) throws IOException {
    if (uri == null || uri.isBlank()) {
      throw new IllegalArgumentException("source: expected an s3:// or file:// URI, found none");
    }
    sources.check(uri);
    if (uri.startsWith("file:")) {
      Path p = Path.of(URI.create(uri));
      if (!Files.exists(p)) {
        throw new IllegalArgumentException(
            "source " + uri + ": expected an existing path, found none");
      }
      return p;
    }
    if (!uri.startsWith("s3://")) {
      throw new IllegalArgumentException(
          "source: expected an s3:// or file:// URI, found '" + uri + "'");
    }
    S3Uri s3 = S3Uri.parse(uri);
    BlobStore store = requireBlobs();
    Path target = workDir.resolve("fetched-" + fetches.incrementAndGet());
    if (!s3.isPrefix()) {
      Files.createDirectories(target);
      Path file = target.resolve(s3.key().substring(s3.key().lastIndexOf('/') + 1));
      store.getFile(s3, file);
      return file;
    }
    Files.createDirectories(target);
    int n = 0;
    for (BlobStore.BlobInfo blob : store.list(s3)) {
      String rel = blob.uri().key().substring(s3.key().length());
      Path file = target.resolve(rel).normalize();
      if (!file.startsWith(target)) {
        throw new IllegalArgumentException("source object escapes its prefix: " + blob.uri());
      }
      Files.createDirectories(file.getParent());
      store.getFile(blob.uri(), file);
      n++;
    }
    if (n == 0) {
      throw new IllegalArgumentException(
          "source " + uri + ": expected objects under it, found none");
    }
    return target;
  }

  /**
   * Refuses a source this worker may not read, without reading it (e.g. the calibration text at
   * ingestion, so a bad job fails at its first step, not after hours of compute).
   *
   * @throws SourcePolicy.SourceRefusedException for a source outside the policy
   */
  public void checkSource(String uri) {
    sources.check(uri);
  }

  private ArtifactStore requireArtifacts() {
    if (artifacts == null) {
      throw new IllegalStateException("no artifact store configured for this context");
    }
    return artifacts;
  }

  private BlobStore requireBlobs() {
    if (blobs == null) {
      throw new IllegalStateException("no blob store configured for this context");
    }
    return blobs;
  }

  /** Builds a {@link StageContext}. */
  public static final class Builder {
    private final StageRequested request;
    private Path inputDir;
    private ArtifactManifest inputManifest;
    private Path outputDir;
    private Path workDir;
    private Path baselineDir;
    private String device = "cpu";
    private long memoryBudgetBytes = Long.MAX_VALUE;
    private ProgressReporter progress = (f, m) -> {};
    private BooleanSupplier cancelled = () -> false;
    private BlobStore blobs;
    private ArtifactStore artifacts;
    private SourcePolicy sources = SourcePolicy.UNRESTRICTED;

    private Builder(StageRequested request) {
      this.request = Objects.requireNonNull(request, "request");
    }

    public Builder inputDir(Path dir) {
      this.inputDir = dir;
      return this;
    }

    public Builder inputManifest(ArtifactManifest manifest) {
      this.inputManifest = manifest;
      return this;
    }

    public Builder outputDir(Path dir) {
      this.outputDir = dir;
      return this;
    }

    public Builder workDir(Path dir) {
      this.workDir = dir;
      return this;
    }

    /** A local baseline directory, instead of downloading {@code request.baseline}. */
    public Builder baselineDir(Path dir) {
      this.baselineDir = dir;
      return this;
    }

    public Builder memoryBudgetBytes(long bytes) {
      this.memoryBudgetBytes = bytes;
      return this;
    }

    public Builder device(String device) {
      this.device = Objects.requireNonNull(device);
      return this;
    }

    public Builder progress(ProgressReporter progress) {
      this.progress = Objects.requireNonNull(progress);
      return this;
    }

    /** Which sources {@link #fetch} may read; unrestricted unless set (a worker always sets it). */
    public Builder sources(SourcePolicy sources) {
      this.sources = Objects.requireNonNull(sources);
      return this;
    }

    public Builder cancelled(BooleanSupplier cancelled) {
      this.cancelled = Objects.requireNonNull(cancelled);
      return this;
    }

    public Builder blobs(BlobStore blobs) {
      this.blobs = blobs;
      return this;
    }

    public Builder artifacts(ArtifactStore artifacts) {
      this.artifacts = artifacts;
      return this;
    }

    /**
     * @throws IllegalArgumentException when the request's params are not a JSON object
     */
    public StageContext build() {
      return new StageContext(this);
    }
  }
}
