package dev.compactor.core.cascade;

import java.util.Locale;

/** What a routing decision covers. */
public enum Granularity {
  /** A whole request (a task document, a text window) is answered by one model. */
  REQUEST,
  /** Each token: the small model's unless its confidence at that token is low. */
  TOKEN;

  /** The name recipes and the CLI use. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The granularity named {@code id} ({@code request} or {@code token}). */
  public static Granularity of(String id) {
    for (Granularity g : values()) {
      if (g.id().equals(id.strip().toLowerCase(Locale.ROOT))) {
        return g;
      }
    }
    throw new IllegalArgumentException(
        "unknown granularity '" + id + "'; expected request or token");
  }
}
