package dev.compactor.bench;

/** {@code --key value} and {@code --flag} command-line arguments of the bench tools. */
record BenchArgs(String[] args) {

  /** The value after {@code key}, else {@code dflt}; a null default makes the key required. */
  String get(String key, String dflt) {
    for (int i = 0; i < args.length - 1; i++) {
      if (args[i].equals(key)) {
        return args[i + 1];
      }
    }
    if (dflt == null) {
      throw new IllegalArgumentException("missing " + key + " <value>");
    }
    return dflt;
  }

  int integer(String key, int dflt) {
    return Integer.parseInt(get(key, Integer.toString(dflt)));
  }

  long longValue(String key, long dflt) {
    return Long.parseLong(get(key, Long.toString(dflt)));
  }

  boolean flag(String key) {
    for (String s : args) {
      if (s.equals(key)) {
        return true;
      }
    }
    return false;
  }
}
