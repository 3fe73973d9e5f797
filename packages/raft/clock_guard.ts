/**
 * The clock guard: decides whether this node's clocks can be trusted with a
 * read lease. A lease is a promise about elapsed time ("no other leader can
 * exist for L ms after a quorum acknowledged me"), so it is only as good as
 * the clocks that measure it. The guard checks them two ways:
 *
 * - locally, the monotonic clock against the wall clock: their rates must
 *   agree within `maxRateDrift` over `windowMs`, and their difference must not
 *   jump by more than `maxJumpMs` between two samples (a suspended VM, whose
 *   monotonic clock stops while the wall clock is corrected afterwards, or a
 *   wall clock stepped by hand); after a jump the guard stays suspect for
 *   `windowMs`;
 * - against peers, from heartbeat round trips: the leader stamps each
 *   heartbeat with its monotonic time, the follower answers with its own
 *   monotonic and wall times, and the leader bounds the peer's clock rate
 *   relative to its own (the round-trip times bound the measurement error)
 *   and the offset of the wall clocks.
 *
 * Pure: the caller passes every clock reading in. Times are in the unit of
 * the monotonic clock (ms in production, virtual ms in the simulator).
 */
import type { NodeId } from "./messages.ts";

/** Bounds of {@link ClockGuard}. */
export interface ClockGuardOptions {
  /** Max |rate − 1| between two clocks (own monotonic vs wall, own vs a peer's). Default 0.05. */
  maxRateDrift?: number;
  /** Max jump of (wall − monotonic) between two local samples. Default 500 ms. */
  maxJumpMs?: number;
  /** Max offset between this node's wall clock and a peer's. Default 1000 ms. */
  maxOffsetMs?: number;
  /**
   * Rates are measured over at least this span; a peer is trusted only once
   * it has been measured over it, and a local jump keeps the node suspect
   * this long. Default 2000 ms.
   */
  windowMs?: number;
}

/** One peer's clock as the leader measured it. */
export interface PeerClock {
  /** Peer's monotonic rate relative to ours (middle of the measured interval), when measured. */
  rate?: number;
  /** Peer's wall clock minus ours, ms (midpoint estimate), when known. */
  offsetMs?: number;
  /** True when measured over a full window and within every bound. */
  trusted: boolean;
  /** Why it is not trusted. */
  reason?: string;
}

/** What the guard says about this node's clocks. */
export interface ClockVerdict {
  /** False while the local check fails: no lease reads at all. */
  localOk: boolean;
  /** Why the local check fails. */
  reason?: string;
  /** Own wall rate relative to own monotonic clock over the window, when measured. */
  wallRate?: number;
  /** Per-peer verdicts (filled on the leader, from heartbeat round trips). */
  peers: Record<number, PeerClock>;
}

interface LocalSample {
  mono: number;
  wall: number;
}

interface PeerSample {
  /** Our monotonic time when the heartbeat left. */
  sent: number;
  /** Our monotonic time when the answer came. */
  recv: number;
  /** The peer's monotonic time when it answered. */
  peerMono: number;
}

/** Checks this node's clocks locally and against its peers (see the module doc). */
export class ClockGuard {
  readonly #rate: number;
  readonly #jump: number;
  readonly #offset: number;
  readonly #window: number;
  #local: LocalSample[] = [];
  #suspectUntil = -Infinity;
  #suspectReason: string | undefined;
  readonly #peers = new Map<NodeId, PeerSample[]>();
  readonly #peerState = new Map<NodeId, PeerClock>();

  constructor(o: ClockGuardOptions = {}) {
    this.#rate = o.maxRateDrift ?? 0.05;
    this.#jump = o.maxJumpMs ?? 500;
    this.#offset = o.maxOffsetMs ?? 1000;
    this.#window = o.windowMs ?? 2000;
  }

  /** Records one reading of the local clocks (call often: every tick and before a lease decision). */
  sampleLocal(mono: number, wall: number): void {
    const last = this.#local[this.#local.length - 1];
    if (last) {
      const dMono = mono - last.mono;
      const jump = (wall - last.wall) - dMono;
      if (dMono < 0) {
        this.#suspect(mono, "the monotonic clock went backwards");
      } else if (Math.abs(jump) > this.#jump) {
        this.#suspect(
          mono,
          `the wall clock moved ${
            Math.round(jump)
          } ms against the monotonic clock`,
        );
        // Start measuring the rate afresh after a jump.
        this.#local = [];
      }
      // Keep samples at least 1/8 window apart: the newest slot is
      // overwritten until it is that far from the one before it.
      const l = this.#local;
      if (
        l.length > 1 && last.mono - l[l.length - 2]!.mono < this.#window / 8
      ) {
        l[l.length - 1] = { mono, wall };
        this.#trimLocal();
        return;
      }
    }
    this.#local.push({ mono, wall });
    this.#trimLocal();
  }

  #trimLocal(): void {
    const l = this.#local;
    const newest = l[l.length - 1]!;
    // Keep the newest sample at least a window old as the baseline.
    while (l.length > 2 && newest.mono - l[1]!.mono >= this.#window) l.shift();
  }

  #suspect(now: number, reason: string): void {
    this.#suspectUntil = now + this.#window;
    this.#suspectReason = reason;
  }

  /** Wall rate over the window (undefined until a window has passed). */
  #wallRate(): number | undefined {
    const l = this.#local;
    if (l.length < 2) return undefined;
    const a = l[0]!;
    const b = l[l.length - 1]!;
    const dMono = b.mono - a.mono;
    if (dMono < this.#window) return undefined;
    return (b.wall - a.wall) / dMono;
  }

  /** Why the local clocks cannot be trusted at `now`, or undefined when they can. */
  localProblem(now: number): string | undefined {
    if (now < this.#suspectUntil) return this.#suspectReason;
    const r = this.#wallRate();
    if (r !== undefined && Math.abs(r - 1) > this.#rate) {
      return `the wall clock runs at ${
        r.toFixed(3)
      }x the monotonic clock (bound ±${this.#rate})`;
    }
    return undefined;
  }

  /**
   * Records one heartbeat round trip with `peer`: sent at our monotonic
   * `sent`, answered at the peer's monotonic `peerMono` (and wall
   * `peerWall`, if it has one), received at our `recv` (and our wall `wall`).
   */
  samplePeer(
    peer: NodeId,
    sent: number,
    recv: number,
    peerMono: number,
    peerWall?: number,
    wall?: number,
  ): void {
    if (recv < sent) return;
    let list = this.#peers.get(peer);
    const last = list?.[list.length - 1];
    // A peer whose clock went backwards restarted: measure it afresh.
    if (!list || (last && peerMono < last.peerMono)) {
      list = [];
      this.#peers.set(peer, list);
    }
    const s = { sent, recv, peerMono };
    // Samples at least 1/8 window apart (the newest slot is overwritten
    // until it is that far from the one before it).
    if (
      list.length > 1 && last &&
      last.sent - list[list.length - 2]!.sent < this.#window / 8
    ) {
      list[list.length - 1] = s;
    } else {
      list.push(s);
    }
    const newest = list[list.length - 1]!;
    while (list.length > 2 && newest.sent - list[1]!.recv >= this.#window) {
      list.shift();
    }
    const state: PeerClock = { trusted: false };
    const problems: string[] = [];
    const a = list[0]!;
    const b = newest;
    const dPeer = b.peerMono - a.peerMono;
    // The two readings of the peer happened between a.sent..a.recv and
    // b.sent..b.recv of our clock: the interval between them is bounded.
    const shortest = b.sent - a.recv;
    const longest = b.recv - a.sent;
    let measured = false;
    if (shortest >= this.#window) {
      measured = true;
      const lo = dPeer / longest;
      const hi = dPeer / shortest;
      state.rate = (lo + hi) / 2;
      if (lo > 1 + this.#rate || hi < 1 - this.#rate) {
        problems.push(
          `monotonic clock runs at ${
            state.rate.toFixed(3)
          }x ours (bound ±${this.#rate})`,
        );
      }
    }
    if (peerWall !== undefined && wall !== undefined) {
      // The peer read its wall clock somewhere inside the round trip.
      const half = (recv - sent) / 2;
      state.offsetMs = peerWall - (wall - half);
      if (Math.abs(state.offsetMs) - half > this.#offset) {
        problems.push(
          `wall clock ${
            Math.round(state.offsetMs)
          } ms off ours (bound ±${this.#offset} ms)`,
        );
      }
    }
    if (problems.length > 0) state.reason = problems.join("; ");
    else if (!measured) state.reason = "not measured over a full window yet";
    else state.trusted = true;
    this.#peerState.set(peer, state);
  }

  /** True when `peer`'s clock may count toward a lease. */
  peerTrusted(peer: NodeId): boolean {
    return this.#peerState.get(peer)?.trusted ?? false;
  }

  /** Forgets the peer measurements (a new term: they are taken again). */
  resetPeers(): void {
    this.#peers.clear();
    this.#peerState.clear();
  }

  /** The verdict at `now`. */
  verdict(now: number): ClockVerdict {
    const reason = this.localProblem(now);
    const v: ClockVerdict = {
      localOk: reason === undefined,
      peers: Object.fromEntries(this.#peerState),
    };
    if (reason !== undefined) v.reason = reason;
    const r = this.#wallRate();
    if (r !== undefined) v.wallRate = r;
    return v;
  }
}
