package dev.compactor.core.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Jackson set up for untrusted checkpoint JSON: duplicate keys are errors, nesting and number
 * lengths are capped, and field names are neither interned nor canonicalized (a hostile header
 * could otherwise flood the JVM string table or trip the symbol table's hash-collision guard, which
 * throws an unchecked exception).
 */
final class JsonLimits {

  /** safetensors headers nest three deep: root object, tensor entry, shape/offsets array. */
  static final int HEADER_MAX_DEPTH = 3;

  /** config.json and index files nest deeper (rope_scaling, quantization_config, ...). */
  static final int DOCUMENT_MAX_DEPTH = 32;

  /** Largest JSON document read (config, index); a real index is a few MB even for huge models. */
  static final long MAX_DOCUMENT_BYTES = 100L * 1024 * 1024;

  static final JsonFactory HEADER = factory(HEADER_MAX_DEPTH);
  static final ObjectMapper DOCUMENT = new ObjectMapper(factory(DOCUMENT_MAX_DEPTH));

  private JsonLimits() {}

  private static JsonFactory factory(int maxDepth) {
    return JsonFactory.builder()
        .streamReadConstraints(
            StreamReadConstraints.builder()
                .maxNestingDepth(maxDepth)
                .maxNumberLength(64)
                .maxNameLength(64 * 1024)
                .maxDocumentLength(MAX_DOCUMENT_BYTES)
                .build())
        .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
        .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
        .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
        .build();
  }
}
