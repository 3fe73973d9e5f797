import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** A replicated node's Prometheus metrics (prom-client): raft traffic, elections, commit and fsync latency, plus HTTP request latency for the app that serves them at `GET /metrics`. */
export class ReplicationMetrics {
  /** The registry every metric here is registered in (serve it at `GET /metrics`). */
  readonly registry: Registry = new Registry();
  /** Proposals made on this node. */
  readonly proposals: Counter = new Counter({
    name: "strata_raft_proposals_total",
    help:
      "Proposals made on this node (forwarded to the leader when a follower).",
    registers: [this.registry],
  });
  /** Proposal → applied latency. */
  readonly commitSeconds: Histogram = new Histogram({
    name: "strata_raft_commit_seconds",
    help: "Time from proposal to being applied on the proposing node.",
    buckets: [
      0.0005,
      0.001,
      0.002,
      0.005,
      0.01,
      0.02,
      0.05,
      0.1,
      0.25,
      0.5,
      1,
      2.5,
    ],
    registers: [this.registry],
  });
  /** Log append + fsync latency. */
  readonly fsyncSeconds: Histogram = new Histogram({
    name: "strata_raft_log_append_seconds",
    help: "Time to append a Ready's entries to the log, fsync included.",
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
    registers: [this.registry],
  });
  /** Elections by outcome. */
  readonly elections: Counter<"outcome"> = new Counter({
    name: "strata_raft_elections_total",
    help:
      "Campaigns started (becameCandidate) and won (becameLeader) by this node.",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  /** Leader changes seen. */
  readonly leaderChanges: Counter = new Counter({
    name: "strata_raft_leader_changes_total",
    help: "Times this node saw a new leader.",
    registers: [this.registry],
  });
  /** Snapshots taken. */
  readonly snapshots: Counter = new Counter({
    name: "strata_raft_snapshots_total",
    help: "Snapshots of the state machine taken by this node.",
    registers: [this.registry],
  });
  /** Raft messages sent, by type. */
  readonly messagesSent: Counter<"type"> = new Counter({
    name: "strata_raft_messages_sent_total",
    help: "Raft messages sent to peers, by message type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  /** Raft messages received, by type. */
  readonly messagesReceived: Counter<"type"> = new Counter({
    name: "strata_raft_messages_received_total",
    help: "Raft messages received from peers, by message type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  /** Bytes sent on the wire, by message type (after differential encoding). */
  readonly bytesSent: Counter<"type"> = new Counter({
    name: "strata_raft_bytes_sent_total",
    help: "Bytes of raft messages put on the wire, by message type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  /** Bytes sent to members of another site, by message type (only with sites). */
  readonly crossSiteBytes: Counter<"type"> = new Counter({
    name: "strata_raft_cross_site_bytes_total",
    help:
      "Bytes put on the wire to peers of another site (--site), by message type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  /** Packed append batches sent to a remote site's relay. */
  readonly relayBatches: Counter = new Counter({
    name: "strata_raft_relay_batches_sent_total",
    help:
      "Packed append batches this leader sent to a remote site's relay member.",
    registers: [this.registry],
  });
  /** Appends this node forwarded to its site's followers as a relay. */
  readonly relayForwarded: Counter = new Counter({
    name: "strata_raft_relay_forwarded_total",
    help: "Appends unpacked and forwarded by this node as its site's relay.",
    registers: [this.registry],
  });
  /** Followers sent to directly after a relayed append went unanswered. */
  readonly relayFallbacks: Counter = new Counter({
    name: "strata_raft_relay_fallbacks_total",
    help:
      "Times a relayed append went unanswered past the relay timeout, so its follower was sent to directly.",
    registers: [this.registry],
  });
  /** Bytes differential encoding kept off the wire. */
  readonly bytesSaved: Counter<"type"> = new Counter({
    name: "strata_raft_diff_bytes_saved_total",
    help: "Bytes differential encoding saved against whole messages, by type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  /** Reads asked at lease consistency, by how they were served. */
  readonly leaseReads: Counter<"served"> = new Counter({
    name: "strata_raft_lease_reads_total",
    help:
      "Reads asked at lease consistency on this node, by how they were served: from the leader's lease, or through ReadIndex (no valid lease here: a follower, a lapsed or voided lease, a suspect clock).",
    labelNames: ["served"],
    registers: [this.registry],
  });
  /** Lease reads the clock guard sent to ReadIndex. */
  readonly clockRefusals: Counter = new Counter({
    name: "strata_raft_clock_guard_refusals_total",
    help:
      "Lease reads on the leader that went through ReadIndex because the clock guard distrusted the clocks.",
    registers: [this.registry],
  });
  /** Ticks run late to catch up with the monotonic clock. */
  readonly ticksCaughtUp: Counter = new Counter({
    name: "strata_raft_ticks_caught_up_total",
    help:
      "Raft ticks run late, in a burst, because timer callbacks were missed (a stopped process, a blocked event loop).",
    registers: [this.registry],
  });
  /** HTTP requests by route and status. */
  readonly httpRequests: Histogram<"route" | "status"> = new Histogram({
    name: "strata_http_request_seconds",
    help: "HTTP request latency by route and status.",
    labelNames: ["route", "status"],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly #gauges: Record<string, Gauge> = {};

  /** Sets point-in-time gauges (term, commit, applied, ...). */
  setGauges(values: Record<string, number>): void {
    for (const [name, v] of Object.entries(values)) {
      const metric = `strata_raft_${
        name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
      }`;
      this.#gauges[name] ??= new Gauge({
        name: metric,
        help: `Current ${name}.`,
        registers: [this.registry],
      });
      this.#gauges[name]!.set(v);
    }
  }

  /** Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
