package dev.compactor.schemas;

import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.avro.util.ClassSecurityValidator;

/**
 * Lets Avro instantiate Compactor's generated event classes in production code.
 *
 * <p>Avro 1.12 refuses to (de)serialize classes outside its trusted packages unless the JVM runs
 * with {@code -Dorg.apache.avro.SERIALIZABLE_PACKAGES=...}. Services should not depend on a
 * command-line flag to read their own events, so the serdes call {@link #trustCompactorClasses()}
 * once; it adds {@code dev.compactor.*} to whatever Avro already trusts.
 */
public final class AvroClassTrust {

  /** Package prefix of every class this project generates or writes. */
  public static final String TRUSTED_PREFIX = "dev.compactor.";

  private static final AtomicBoolean INSTALLED = new AtomicBoolean();

  private AvroClassTrust() {}

  /** Extends Avro's global class trust to {@code dev.compactor.*}; idempotent and thread-safe. */
  public static void trustCompactorClasses() {
    if (INSTALLED.compareAndSet(false, true)) {
      ClassSecurityValidator.ClassSecurityPredicate previous = ClassSecurityValidator.getGlobal();
      ClassSecurityValidator.setGlobal(
          ClassSecurityValidator.composite(
              previous, type -> type.getName().startsWith(TRUSTED_PREFIX)));
    }
  }
}
