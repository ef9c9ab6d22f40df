package dev.compactor.runtime.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.CoreConstants;
import ch.qos.logback.core.LayoutBase;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One line per event, as text or as a JSON object, carrying the job coordinates from the MDC.
 *
 * <p>Text: {@code 2026-01-01T12:00:00.123Z INFO [job-1] d.c.runtime.JobRunner jobId=j step=2
 * attempt=0 stage=quantize record=t-0@5 - message}. JSON: {@code {"timestamp": …, "level": …,
 * "thread": …, "logger": …, "message": …, "jobId": …, …, "exception": …}} — the MDC keys at the top
 * level, so a log shipper can filter on {@code jobId} without parsing the message.
 */
public final class ServiceLogLayout extends LayoutBase<ILoggingEvent> {

  /** MDC keys in the order they are printed; any other MDC key follows them. */
  public static final List<String> JOB_KEYS = List.of("jobId", "step", "attempt", "stage");

  private static final ObjectMapper JSON = new ObjectMapper();
  private final boolean json;

  public ServiceLogLayout(boolean json) {
    this.json = json;
  }

  @Override
  public String doLayout(ILoggingEvent e) {
    Map<String, String> mdc = ordered(e.getMDCPropertyMap());
    String exception = exception(e.getThrowableProxy());
    if (json) {
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("timestamp", Instant.ofEpochMilli(e.getTimeStamp()).toString());
      line.put("level", e.getLevel().toString());
      line.put("thread", e.getThreadName());
      line.put("logger", e.getLoggerName());
      line.put("message", e.getFormattedMessage());
      for (Map.Entry<String, String> m : mdc.entrySet()) {
        line.putIfAbsent(m.getKey(), m.getValue());
      }
      if (exception != null) {
        line.put("exception", exception);
      }
      try {
        return JSON.writeValueAsString(line) + CoreConstants.LINE_SEPARATOR;
      } catch (JsonProcessingException impossible) {
        throw new IllegalStateException(impossible);
      }
    }
    StringBuilder b = new StringBuilder(160);
    b.append(Instant.ofEpochMilli(e.getTimeStamp()))
        .append(' ')
        .append(String.format("%-5s", e.getLevel()))
        .append(" [")
        .append(e.getThreadName())
        .append("] ")
        .append(e.getLoggerName());
    for (Map.Entry<String, String> m : mdc.entrySet()) {
      b.append(' ').append(m.getKey()).append('=').append(m.getValue());
    }
    b.append(" - ").append(e.getFormattedMessage()).append(CoreConstants.LINE_SEPARATOR);
    if (exception != null) {
      b.append(exception).append(CoreConstants.LINE_SEPARATOR);
    }
    return b.toString();
  }

  private static Map<String, String> ordered(Map<String, String> mdc) {
    Map<String, String> out = new LinkedHashMap<>();
    if (mdc == null || mdc.isEmpty()) {
      return out;
    }
    for (String k : JOB_KEYS) {
      String v = mdc.get(k);
      if (v != null) {
        out.put(k, v);
      }
    }
    mdc.entrySet().stream()
        .filter(m -> !JOB_KEYS.contains(m.getKey()))
        .sorted(Map.Entry.comparingByKey())
        .forEach(m -> out.put(m.getKey(), m.getValue()));
    return out;
  }

  private static String exception(IThrowableProxy t) {
    return t == null ? null : ThrowableProxyUtil.asString(t).stripTrailing();
  }
}
