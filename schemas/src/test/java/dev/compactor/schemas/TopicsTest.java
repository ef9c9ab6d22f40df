package dev.compactor.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.kafka.clients.admin.NewTopic;
import org.junit.jupiter.api.Test;

class TopicsTest {

  @Test
  void topicNamesAreUniqueAndNamespaced() {
    Set<String> names = new HashSet<>();
    for (Topic<String, ?> topic : Topics.all()) {
      assertTrue(names.add(topic.name()), "duplicate topic " + topic.name());
      assertTrue(topic.name().matches("compactor\\.[a-z.]+"), topic.name());
    }
    assertEquals(10 + Topics.STAGES.size(), names.size());
  }

  @Test
  void eachStageHasItsOwnRequestTopicAndGroup() {
    assertEquals("compactor.stage.quantize.requested", Topics.stageRequested("quantize").name());
    assertSame(Topics.stageRequested("prune"), Topics.stageRequested("prune"));
    assertEquals("compactor-stage-distill", Topics.stageConsumerGroup("distill"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Topics.stageRequested("Prune"));
    assertTrue(e.getMessage().contains("unknown stage 'Prune'"), e.getMessage());
    assertTrue(e.getMessage().contains("quantize"), e.getMessage());
  }

  @Test
  void stateTopicsAreCompactedAndEventTopicsAreNot() {
    assertEquals("compact", Topics.JOBS_STATUS.cleanupPolicy());
    assertEquals("compact", Topics.MODELS_READY.cleanupPolicy());
    for (Topic<String, ?> topic :
        List.of(Topics.JOBS_SUBMITTED, Topics.STAGE_COMPLETED, Topics.DEADLETTER)) {
      assertEquals("delete", topic.cleanupPolicy(), topic.name());
    }
  }

  @Test
  void newTopicCarriesPartitionsAndConfigs() {
    NewTopic created = Topics.JOBS_STATUS.newTopic((short) 1);
    assertEquals("compactor.jobs.status", created.name());
    assertEquals(6, created.numPartitions());
    assertEquals("compact", created.configs().get("cleanup.policy"));
  }

  @Test
  void keysAreStrings() {
    byte[] key = Topics.STAGE_FAILED.keySerde().serializer().serialize("t", "job-1");
    assertEquals("job-1", Topics.STAGE_FAILED.keySerde().deserializer().deserialize("t", key));
  }
}
