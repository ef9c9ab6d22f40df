package dev.compactor.schemas.registry;

/**
 * A schema registry request failed: either the registry answered with an error (HTTP status plus
 * the Confluent {@code error_code}, e.g. 40401 subject not found, 40403 schema not found, 409
 * incompatible schema, 42201 invalid schema) or it could not be reached at all ({@link
 * #UNREACHABLE}).
 */
public class SchemaRegistryException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Subject not found. */
  public static final int SUBJECT_NOT_FOUND = 40401;

  /** Version not found. */
  public static final int VERSION_NOT_FOUND = 40402;

  /** Schema (id or content) not found. */
  public static final int SCHEMA_NOT_FOUND = 40403;

  /** Subject has no subject-level compatibility configured. */
  public static final int SUBJECT_CONFIG_NOT_FOUND = 40408;

  /** Schema is incompatible with an earlier version. */
  public static final int INCOMPATIBLE_SCHEMA = 409;

  /** Schema is not valid Avro. */
  public static final int INVALID_SCHEMA = 42201;

  /** Version is not a positive integer or "latest". */
  public static final int INVALID_VERSION = 42202;

  /** Compatibility level is not one of the known names. */
  public static final int INVALID_COMPATIBILITY_LEVEL = 42203;

  /** Backend store failed. */
  public static final int STORE_ERROR = 50001;

  /** Pseudo error code: no HTTP answer (connection refused, timeout, interrupted). */
  public static final int UNREACHABLE = -1;

  private final int httpStatus;
  private final int errorCode;

  public SchemaRegistryException(int httpStatus, int errorCode, String message) {
    super(message);
    this.httpStatus = httpStatus;
    this.errorCode = errorCode;
  }

  public SchemaRegistryException(int httpStatus, int errorCode, String message, Throwable cause) {
    super(message, cause);
    this.httpStatus = httpStatus;
    this.errorCode = errorCode;
  }

  public SchemaRegistryException(String message, Throwable cause) {
    super(message, cause);
    this.httpStatus = UNREACHABLE;
    this.errorCode = UNREACHABLE;
  }

  /** HTTP status of the answer, or {@link #UNREACHABLE}. */
  public int httpStatus() {
    return httpStatus;
  }

  /** Confluent error code of the answer (e.g. 40401), or {@link #UNREACHABLE}. */
  public int errorCode() {
    return errorCode;
  }

  /** True for any "not found" answer (HTTP 404). */
  public boolean isNotFound() {
    return httpStatus == 404;
  }
}
