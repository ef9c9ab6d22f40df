package dev.compactor.infra.registry;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Who may do what on the schema registry: HTTP basic auth as Confluent's clients send it ({@code
 * basic.auth.credentials.source=USER_INFO}, {@code basic.auth.user.info=user:pass}), with three
 * roles. Reads need {@link Role#READ} (any authenticated user, or anonymous when allowed),
 * registering a schema {@link Role#WRITE}, changing compatibility and deleting {@link Role#ADMIN}.
 * Passwords are compared in constant time.
 */
public final class RegistryAuth {

  /** A user's permissions; each includes the ones before it. */
  public enum Role {
    READ,
    WRITE,
    ADMIN;

    boolean includes(Role other) {
      return compareTo(other) >= 0;
    }
  }

  /** No authentication: anyone may do anything (the registry's behaviour before roles). */
  public static final RegistryAuth OPEN = new RegistryAuth(Map.of(), Role.ADMIN);

  private record User(byte[] password, Role role) {}

  private final Map<String, User> users;
  private final Role anonymous; // null = must authenticate

  private RegistryAuth(Map<String, User> users, Role anonymous) {
    this.users = users;
    this.anonymous = anonymous;
  }

  /** Starts a user table; anonymous requests are refused unless {@link Builder#anonymous}. */
  public static Builder builder() {
    return new Builder();
  }

  /** Builds a {@link RegistryAuth}. */
  public static final class Builder {
    private final Map<String, User> users = new LinkedHashMap<>();
    private Role anonymous;

    public Builder user(String name, String password, Role role) {
      if (name.contains(":")) {
        throw new IllegalArgumentException("a user name cannot contain ':': " + name);
      }
      users.put(name, new User(password.getBytes(StandardCharsets.UTF_8), role));
      return this;
    }

    /** Lets requests without credentials do what {@code role} allows. */
    public Builder anonymous(Role role) {
      this.anonymous = role;
      return this;
    }

    public RegistryAuth build() {
      return new RegistryAuth(Map.copyOf(users), anonymous);
    }
  }

  /** The outcome of checking one request. */
  public record Decision(int status, int errorCode, String message) {
    static final Decision ALLOWED = new Decision(200, 0, "");

    public boolean allowed() {
      return status == 200;
    }
  }

  /** Whether a request with this {@code Authorization} header may do what {@code needed} allows. */
  public Decision check(String authorization, Role needed) {
    Optional<Role> role;
    if (authorization == null) {
      if (anonymous == null) {
        return new Decision(
            401,
            40101,
            "Unauthorized: this registry needs HTTP basic auth (basic.auth.credentials.source="
                + "USER_INFO, basic.auth.user.info=user:password)");
      }
      role = Optional.of(anonymous);
    } else {
      role = authenticate(authorization);
      if (role.isEmpty()) {
        return new Decision(401, 40101, "Unauthorized: invalid user name or password");
      }
    }
    if (!role.get().includes(needed)) {
      return new Decision(
          403,
          40301,
          "Forbidden: this needs the "
              + needed
              + " role"
              + (authorization == null ? " (send credentials)" : ", the user has " + role.get()));
    }
    return Decision.ALLOWED;
  }

  private Optional<Role> authenticate(String authorization) {
    if (!authorization.regionMatches(true, 0, "Basic ", 0, 6)) {
      return Optional.empty();
    }
    String decoded;
    try {
      decoded =
          new String(
              Base64.getDecoder().decode(authorization.substring(6).trim()),
              StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
    int colon = decoded.indexOf(':');
    if (colon < 0) {
      return Optional.empty();
    }
    User user = users.get(decoded.substring(0, colon));
    byte[] given = decoded.substring(colon + 1).getBytes(StandardCharsets.UTF_8);
    // compare even for an unknown user, so timing does not tell which names exist
    byte[] expected = user == null ? new byte[given.length + 1] : user.password();
    boolean ok = MessageDigest.isEqual(given, expected);
    return ok && user != null ? Optional.of(user.role()) : Optional.empty();
  }
}
