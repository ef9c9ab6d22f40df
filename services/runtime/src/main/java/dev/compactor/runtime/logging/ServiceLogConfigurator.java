package dev.compactor.runtime.logging;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ConfiguratorRank;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.OutputStreamAppender;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import ch.qos.logback.core.spi.ContextAwareBase;
import java.util.Locale;

/**
 * The logging of every service, found by logback through {@code META-INF/services}: one line per
 * event on stdout, {@code COMPACTOR_LOG_FORMAT=text} (default) or {@code json}, at {@code
 * COMPACTOR_LOG_LEVEL} (default INFO; Kafka's own chatter at WARN), with the job coordinates of
 * {@link ServiceLogLayout}. A {@code logback.xml} or {@code logback-test.xml} on the classpath, or
 * {@code -Dlogback.configurationFile}, takes precedence (the CLI and the tests bring their own).
 */
@ConfiguratorRank(ConfiguratorRank.CUSTOM_NORMAL_PRIORITY)
public final class ServiceLogConfigurator extends ContextAwareBase implements Configurator {

  public static final String FORMAT_ENV = "COMPACTOR_LOG_FORMAT";
  public static final String LEVEL_ENV = "COMPACTOR_LOG_LEVEL";

  @Override
  public ExecutionStatus configure(LoggerContext context) {
    ClassLoader loader = ServiceLogConfigurator.class.getClassLoader();
    if (System.getProperty("logback.configurationFile") != null
        || loader.getResource("logback-test.xml") != null
        || loader.getResource("logback.xml") != null) {
      return ExecutionStatus.INVOKE_NEXT_IF_ANY;
    }
    ConsoleAppender<ILoggingEvent> console = new ConsoleAppender<>();
    console.setName("stdout");
    try {
      apply(context, console, System.getenv(FORMAT_ENV), System.getenv(LEVEL_ENV));
    } catch (IllegalArgumentException e) {
      apply(context, console, "text", "INFO");
      context
          .getLogger(ServiceLogConfigurator.class)
          .error("{}; logging as text at INFO", e.getMessage());
    }
    return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
  }

  /**
   * Sends every event of {@code context} to {@code appender} in {@code format} ({@code text} or
   * {@code json}; null means text) at {@code level} (null means INFO).
   *
   * @throws IllegalArgumentException for an unknown format or level, naming the variable
   */
  public static void apply(
      LoggerContext context,
      OutputStreamAppender<ILoggingEvent> appender,
      String format,
      String level) {
    String f = format == null || format.isBlank() ? "text" : format.trim().toLowerCase(Locale.ROOT);
    if (!f.equals("text") && !f.equals("json")) {
      throw new IllegalArgumentException(
          FORMAT_ENV + " must be text or json, found '" + format + "'");
    }
    Level root = Level.INFO;
    if (level != null && !level.isBlank()) {
      root = Level.toLevel(level.trim(), null);
      if (root == null) {
        throw new IllegalArgumentException(
            LEVEL_ENV + " must be TRACE, DEBUG, INFO, WARN, ERROR or OFF, found '" + level + "'");
      }
    }
    ServiceLogLayout layout = new ServiceLogLayout(f.equals("json"));
    layout.setContext(context);
    layout.start();
    LayoutWrappingEncoder<ILoggingEvent> encoder = new LayoutWrappingEncoder<>();
    encoder.setContext(context);
    encoder.setLayout(layout);
    encoder.start();
    appender.setContext(context);
    appender.setEncoder(encoder);
    appender.start();
    Logger rootLogger = context.getLogger(Logger.ROOT_LOGGER_NAME);
    rootLogger.detachAndStopAllAppenders();
    rootLogger.addAppender(appender);
    rootLogger.setLevel(root);
    if (root == Level.INFO) {
      // Kafka's clients and Streams log every config and rebalance at INFO
      context.getLogger("org.apache.kafka").setLevel(Level.WARN);
    }
  }
}
