package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Assignment;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.GroupSubscription;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor.Subscription;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class BusyPartitionAssignorTest {

  static final String TOPIC = "requests";
  static final Node NODE = new Node(0, "localhost", 9092);

  static Cluster cluster(int partitions) {
    List<PartitionInfo> infos = new ArrayList<>();
    for (int p = 0; p < partitions; p++) {
      infos.add(new PartitionInfo(TOPIC, p, NODE, new Node[] {NODE}, new Node[] {NODE}));
    }
    return new Cluster("c", List.of(NODE), infos, Set.of(), Set.of());
  }

  static List<TopicPartition> all(int partitions) {
    List<TopicPartition> tps = new ArrayList<>();
    for (int p = 0; p < partitions; p++) {
      tps.add(new TopicPartition(TOPIC, p));
    }
    return tps;
  }

  static Subscription member(List<TopicPartition> owned, Set<TopicPartition> busy) {
    ByteBuffer inner = new CooperativeStickyAssignor().subscriptionUserData(Set.of(TOPIC));
    return new Subscription(
        List.of(TOPIC),
        BusyPartitionAssignor.encode(inner, busy),
        owned,
        owned.isEmpty() ? -1 : 1,
        Optional.empty());
  }

  /** Partitions the plain cooperative-sticky assignor takes away from member a. */
  static List<TopicPartition> movedByPlainSticky(int partitions) {
    ByteBuffer inner = new CooperativeStickyAssignor().subscriptionUserData(Set.of(TOPIC));
    Map<String, Assignment> plain =
        new CooperativeStickyAssignor()
            .assign(
                cluster(partitions),
                new GroupSubscription(
                    Map.of(
                        "a",
                        new Subscription(
                            List.of(TOPIC), inner, all(partitions), 1, Optional.empty()),
                        "b",
                        new Subscription(List.of(TOPIC), inner, List.of(), -1, Optional.empty()))))
            .groupAssignment();
    List<TopicPartition> moved = new ArrayList<>(all(partitions));
    moved.removeAll(plain.get("a").partitions());
    return moved;
  }

  @Test
  void aJoiningMemberDoesNotTakeThePartitionOfARunningJob() {
    List<TopicPartition> moved = movedByPlainSticky(6);
    assertEquals(3, moved.size(), "the plain assignor hands half of a's partitions over");
    TopicPartition busy = moved.get(0);
    Map<String, Assignment> out =
        new BusyPartitionAssignor()
            .assign(
                cluster(6),
                new GroupSubscription(
                    Map.of("a", member(all(6), Set.of(busy)), "b", member(List.of(), Set.of()))))
            .groupAssignment();
    List<TopicPartition> a = out.get("a").partitions();
    List<TopicPartition> b = out.get("b").partitions();
    assertTrue(a.contains(busy), "a keeps its running job's partition: " + a);
    assertFalse(b.contains(busy), b.toString());
    Set<TopicPartition> union = new HashSet<>(a);
    union.addAll(b);
    assertEquals(a.size() + b.size(), union.size(), "no partition twice");
    assertEquals(4, a.size(), "the idle partitions a gives up are the plain assignor's: " + a);
  }

  @Test
  void aClaimOnAPartitionTheMemberDoesNotOwnIsIgnored() {
    List<TopicPartition> moved = movedByPlainSticky(6);
    TopicPartition notB = all(6).stream().filter(tp -> !moved.contains(tp)).findFirst().get();
    Map<String, Assignment> out =
        new BusyPartitionAssignor()
            .assign(
                cluster(6),
                new GroupSubscription(
                    Map.of("a", member(all(6), Set.of()), "b", member(List.of(), Set.of(notB)))))
            .groupAssignment();
    assertFalse(out.get("b").partitions().contains(notB));
    assertEquals(3, out.get("a").partitions().size());
  }

  @Test
  void userDataItDidNotWriteCountsAsNoClaim() {
    ByteBuffer garbage = ByteBuffer.wrap(new byte[] {1, 0, 0, 0, 100});
    assertTrue(BusyPartitionAssignor.decode(garbage).busy().isEmpty());
    assertTrue(BusyPartitionAssignor.decode(null).busy().isEmpty());
    Set<TopicPartition> busy = Set.of(new TopicPartition("t-ü", 5));
    ByteBuffer inner = ByteBuffer.wrap(new byte[] {9, 8, 7});
    var d = BusyPartitionAssignor.decode(BusyPartitionAssignor.encode(inner, busy));
    assertEquals(busy, d.busy());
    assertEquals(inner, d.inner());
  }
}
