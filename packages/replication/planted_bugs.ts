/**
 * Realistic bugs that can be planted in {@link ReplicatedNode}'s Ready loop,
 * so that tests can show the simulator (packages/sim) finds each one. They
 * are selected only through `ReplicaPorts.unsafePlantedBug`, an argument
 * that no flag, configuration file or HTTP request reaches; production
 * wiring never passes it.
 */
export const plantedBugs = [
  /**
   * Log entries are written but not awaited: acknowledgements (and the
   * leader's own count) leave before the fsync, so a crash of a quorum
   * loses a write that was already acknowledged.
   */
  "ack_before_fsync",
  /**
   * The term and vote are written but not awaited before the vote leaves:
   * a voter that crashes before the fsync forgets its vote and may vote
   * again in the same term (two leaders in one term).
   */
  "vote_before_fsync",
  /**
   * Committed entries are applied (and their proposers answered) before the
   * same Ready's log entries and hard state are written: a replica's state
   * machine runs ahead of its own disk.
   */
  "apply_before_persist",
  /**
   * The lease is counted in ticks, not on the monotonic clock, missed ticks
   * are not caught up, and there is no clock guard (the code before issue
   * 15): a leader stopped longer than its lease resumes believing it still
   * holds it.
   */
  "lease_counts_ticks",
  /**
   * A linearizable read on the leader is answered from its commit index
   * without a ReadIndex round confirming it still leads: a deposed leader
   * that has not heard of its successor serves stale data.
   */
  "read_index_skips_quorum",
  /**
   * apps/gfs's `ReplicatedMasterStore.serving()` trusts its leadership alone,
   * without the node's lease (and so without its clock guard): a master
   * leader stopped and resumed answers from metadata its successor has
   * already changed. `ReplicatedNode` itself ignores this one.
   */
  "serving_without_lease",
  /**
   * In a joint configuration the raft core commits on a majority of the
   * outgoing (old) voters alone, not of both: an entry can commit without
   * any new voter holding it, and be lost once the joint configuration is
   * left.
   */
  "joint_commit_old_quorum",
  /**
   * The raft core grants votes without checking that the candidate's log is
   * at least as up to date as its own (§5.4.1): a candidate missing
   * committed entries can win and overwrite them.
   */
  "vote_without_log_check",
  /**
   * The raft core commits entries of earlier terms by counting their
   * replicas (Figure 8 of the Raft paper): such an entry can still be
   * overwritten by a leader of a later term after it was applied.
   */
  "commit_old_term_entries",
] as const;

/** One of {@link plantedBugs}. */
export type PlantedBug = typeof plantedBugs[number];
