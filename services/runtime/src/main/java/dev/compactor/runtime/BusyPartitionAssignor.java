package dev.compactor.runtime;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.Configurable;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kafka's cooperative-sticky assignment, except that a partition whose job is running stays with
 * the worker running it: each member sends the partition it is busy with in its subscription, and
 * the group leader, after the sticky assignor has balanced the group, gives every busy partition
 * back to its current owner (and to no one else). A worker that joins therefore takes only idle
 * partitions, and an hour-long job is not cancelled and redone because the group grew. The price is
 * a temporary imbalance of at most one partition per busy worker, until the next rebalance.
 *
 * <p>The worker hands its busy-partition supplier to the assignor through the consumer's
 * configuration ({@value #BUSY_PARTITIONS_CONFIG}); without one the assignor behaves exactly as
 * {@link CooperativeStickyAssignor}. A member's claim counts only for a partition it reports as
 * owned, so a stale claim cannot take a partition from another worker.
 */
public final class BusyPartitionAssignor implements ConsumerPartitionAssignor, Configurable {

  /** Consumer configuration key holding a {@code Supplier<Set<TopicPartition>>}. */
  public static final String BUSY_PARTITIONS_CONFIG = "compactor.busy.partitions.supplier";

  /** The protocol name members agree on. */
  public static final String NAME = "compactor-busy-sticky";

  private static final int FORMAT = 1;
  private static final Logger LOG = LoggerFactory.getLogger(BusyPartitionAssignor.class);

  private final CooperativeStickyAssignor sticky = new CooperativeStickyAssignor();
  private Supplier<Set<TopicPartition>> busy = Set::of;

  @Override
  @SuppressWarnings("unchecked")
  public void configure(Map<String, ?> configs) {
    Object supplier = configs.get(BUSY_PARTITIONS_CONFIG);
    if (supplier instanceof Supplier<?> s) {
      busy = (Supplier<Set<TopicPartition>>) s;
    }
  }

  @Override
  public ByteBuffer subscriptionUserData(Set<String> topics) {
    return encode(sticky.subscriptionUserData(topics), busy.get());
  }

  @Override
  public GroupAssignment assign(Cluster metadata, GroupSubscription group) {
    Map<String, Subscription> inner = new HashMap<>();
    Map<String, Set<TopicPartition>> claims = new HashMap<>();
    group
        .groupSubscription()
        .forEach(
            (member, s) -> {
              Decoded d = decode(s.userData());
              inner.put(
                  member,
                  new Subscription(
                      s.topics(),
                      d.inner(),
                      s.ownedPartitions(),
                      s.generationId().orElse(-1),
                      s.rackId()));
              Set<TopicPartition> owned = new LinkedHashSet<>(d.busy());
              owned.retainAll(s.ownedPartitions());
              claims.put(member, owned);
            });
    Map<String, Assignment> balanced =
        sticky.assign(metadata, new GroupSubscription(inner)).groupAssignment();
    Map<String, List<TopicPartition>> partitions = new HashMap<>();
    balanced.forEach((m, a) -> partitions.put(m, new ArrayList<>(a.partitions())));
    claims.forEach(
        (member, tps) -> {
          for (TopicPartition tp : tps) {
            partitions.forEach(
                (m, list) -> {
                  if (!m.equals(member)) {
                    list.remove(tp);
                  }
                });
            List<TopicPartition> mine = partitions.computeIfAbsent(member, k -> new ArrayList<>());
            if (!mine.contains(tp)) {
              mine.add(tp);
              LOG.info("kept {} with {}: its job is running there", tp, member);
            }
          }
        });
    Map<String, Assignment> out = new HashMap<>();
    partitions.forEach(
        (m, list) -> {
          Assignment a = balanced.get(m);
          out.put(m, new Assignment(list, a == null ? null : a.userData()));
        });
    return new GroupAssignment(out);
  }

  @Override
  public void onAssignment(Assignment assignment, ConsumerGroupMetadata metadata) {
    sticky.onAssignment(assignment, metadata);
  }

  @Override
  public List<RebalanceProtocol> supportedProtocols() {
    return List.of(RebalanceProtocol.COOPERATIVE);
  }

  @Override
  public short version() {
    return sticky.version();
  }

  @Override
  public String name() {
    return NAME;
  }

  record Decoded(ByteBuffer inner, Set<TopicPartition> busy) {}

  /** {@code [u8 format][i32 inner length or -1][inner][i32 n][n x (i16 len, topic, i32 part)]}. */
  static ByteBuffer encode(ByteBuffer inner, Set<TopicPartition> busy) {
    List<byte[]> topics = new ArrayList<>();
    int size = 1 + 4 + (inner == null ? 0 : inner.remaining()) + 4;
    for (TopicPartition tp : busy) {
      byte[] t = tp.topic().getBytes(StandardCharsets.UTF_8);
      topics.add(t);
      size += 2 + t.length + 4;
    }
    ByteBuffer b = ByteBuffer.allocate(size);
    b.put((byte) FORMAT);
    if (inner == null) {
      b.putInt(-1);
    } else {
      b.putInt(inner.remaining()).put(inner.duplicate());
    }
    b.putInt(busy.size());
    int i = 0;
    for (TopicPartition tp : busy) {
      byte[] t = topics.get(i++);
      b.putShort((short) t.length).put(t).putInt(tp.partition());
    }
    return b.flip();
  }

  /**
   * The sticky assignor's part and the busy partitions of a member's user data; user data this
   * assignor did not write (or cannot read) counts as no claim, so a malformed member cannot break
   * the group's assignment.
   */
  static Decoded decode(ByteBuffer userData) {
    if (userData == null || !userData.hasRemaining()) {
      return new Decoded(null, Set.of());
    }
    ByteBuffer b = userData.duplicate();
    try {
      if (b.get() != FORMAT) {
        return new Decoded(null, Set.of());
      }
      int len = b.getInt();
      ByteBuffer inner = null;
      if (len >= 0) {
        inner = b.slice().limit(len);
        b.position(b.position() + len);
      }
      int n = b.getInt();
      Set<TopicPartition> busy = new LinkedHashSet<>();
      for (int i = 0; i < n; i++) {
        byte[] t = new byte[b.getShort()];
        b.get(t);
        busy.add(new TopicPartition(new String(t, StandardCharsets.UTF_8), b.getInt()));
      }
      return new Decoded(inner, busy);
    } catch (RuntimeException e) {
      return new Decoded(null, Set.of());
    }
  }
}
