package dev.compactor.runtime.logging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.OutputStreamAppender;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.slf4j.MDC;

/** The services' log lines: job coordinates from the MDC in both formats, JSON that parses. */
class ServiceLogLayoutTest {

  private static List<String> log(String format, String level) {
    LoggerContext context = new LoggerContext();
    // the context the services run in gets slf4j's adapter from logback's provider
    context.setMDCAdapter(MDC.getMDCAdapter());
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    OutputStreamAppender<ILoggingEvent> appender = new OutputStreamAppender<>();
    appender.setOutputStream(bytes);
    ServiceLogConfigurator.apply(context, appender, format, level);
    Logger log = context.getLogger("dev.compactor.runtime.JobRunner");
    try {
      MDC.put("jobId", "job-1");
      MDC.put("step", "2");
      MDC.put("attempt", "1");
      MDC.put("stage", "quantize");
      MDC.put("record", "t-0@5");
      log.info("completed in {} ms, \"quoted\"\nsecond line", 42);
      log.warn("failed", new IllegalStateException("boom"));
    } finally {
      MDC.clear();
    }
    log.info("outside any job");
    context.getLogger("org.apache.kafka.clients.NetworkClient").info("kafka chatter");
    context.stop();
    return bytes.toString(StandardCharsets.UTF_8).lines().toList();
  }

  @Test
  void textLinesCarryTheJobCoordinatesInAFixedOrder() {
    List<String> lines = log(null, null);
    assertTrue(
        lines
            .get(0)
            .contains(
                " INFO  [main] dev.compactor.runtime.JobRunner jobId=job-1 step=2 attempt=1"
                    + " stage=quantize record=t-0@5 - completed in 42 ms"),
        lines.get(0));
    assertTrue(lines.stream().anyMatch(l -> l.contains("IllegalStateException: boom")));
    assertTrue(lines.get(lines.size() - 1).endsWith("JobRunner - outside any job"));
    assertFalse(String.join("\n", lines).contains("kafka chatter"), "Kafka INFO is muted");
  }

  @Test
  void jsonModeEmitsOneValidObjectPerEvent() throws Exception {
    List<String> lines = log("json", "info");
    assertEquals(3, lines.size(), String.join("\n", lines));
    ObjectMapper json = new ObjectMapper();
    JsonNode first = json.readTree(lines.get(0));
    assertEquals("INFO", first.get("level").asText());
    assertEquals("dev.compactor.runtime.JobRunner", first.get("logger").asText());
    assertEquals("completed in 42 ms, \"quoted\"\nsecond line", first.get("message").asText());
    assertEquals("job-1", first.get("jobId").asText());
    assertEquals("2", first.get("step").asText());
    assertEquals("1", first.get("attempt").asText());
    assertEquals("quantize", first.get("stage").asText());
    assertTrue(first.get("timestamp").asText().endsWith("Z"));
    JsonNode second = json.readTree(lines.get(1));
    assertTrue(second.get("exception").asText().contains("IllegalStateException: boom"));
    assertFalse(json.readTree(lines.get(2)).has("jobId"));
  }

  @Test
  void badSettingsAreNamed() {
    IllegalArgumentException f =
        assertThrows(IllegalArgumentException.class, () -> log("xml", null));
    assertTrue(f.getMessage().contains("COMPACTOR_LOG_FORMAT must be text or json"));
    IllegalArgumentException l =
        assertThrows(IllegalArgumentException.class, () -> log("text", "loud"));
    assertTrue(l.getMessage().contains("COMPACTOR_LOG_LEVEL"));
  }

  @Test
  void aLogbackXmlOnTheClasspathTakesPrecedence() {
    // the tests' logback-test.xml is on the classpath, as the CLI's logback.xml is in the CLI
    ServiceLogConfigurator c = new ServiceLogConfigurator();
    LoggerContext context = new LoggerContext();
    c.setContext(context);
    assertEquals(Configurator.ExecutionStatus.INVOKE_NEXT_IF_ANY, c.configure(context));
  }
}
