/**
 * One simulated server process: its clocks, its timers, and whether it is
 * running, stopped (SIGSTOP: a pause) or dead (kill -9: a crash). Every
 * callback that runs "inside" the process (a timer, a delivered message,
 * a finished fsync, a client request) goes through {@link SimProcess.run},
 * so a paused process runs nothing until it resumes and a crashed one
 * never runs what its previous life scheduled.
 */
import type { NodeClock } from "@strata/replication";
import type { Timers } from "@strata/transport";
import type { Scheduler } from "./scheduler.ts";

/** A process on the simulated machine. */
export class SimProcess {
  /** Incremented at every crash: callbacks of an earlier life are dropped. */
  generation = 0;
  /** False between a crash and the restart. */
  up = true;
  /** True while stopped (SIGSTOP). */
  paused = false;
  /** Rate of this machine's clocks relative to virtual time (1 = exact). */
  #rate = 1;
  /** Monotonic reading at virtual time `#since`. */
  #monoBase: number;
  /** Wall minus monotonic, ms (a step of the wall clock changes it). */
  #wallOffset: number;
  #since = 0;
  #held: Array<() => void> = [];
  readonly #sched: Scheduler;

  /**
   * @param sched the simulation's scheduler.
   * @param monoStart the monotonic clock's reading at virtual time 0.
   * @param wallStart the wall clock's reading at virtual time 0.
   */
  constructor(sched: Scheduler, monoStart: number, wallStart: number) {
    this.#sched = sched;
    this.#monoBase = monoStart;
    this.#wallOffset = wallStart - monoStart;
  }

  /** Both clocks of the process (the monotonic one keeps running while stopped, as CLOCK_MONOTONIC does). */
  readonly clock: NodeClock = {
    monotonic: () => this.#mono(),
    wall: () => this.#mono() + this.#wallOffset,
  };

  #mono(): number {
    return this.#monoBase + (this.#sched.now - this.#since) * this.#rate;
  }

  /** The clocks' rate from now on (e.g. 1.02: 2% fast). */
  setClockRate(rate: number): void {
    this.#monoBase = this.#mono();
    this.#since = this.#sched.now;
    this.#rate = rate;
  }

  /** Current clock rate. */
  get clockRate(): number {
    return this.#rate;
  }

  /** Steps the wall clock by `ms` (NTP stepping it, an operator's `date -s`). */
  stepWallClock(ms: number): void {
    this.#wallOffset += ms;
  }

  /** Runs `fn` in this process now, later (when paused), or never (when dead). */
  run(fn: () => void): void {
    if (!this.up) return;
    if (this.paused) this.#held.push(fn);
    else fn();
  }

  /** A callback bound to this life of the process (dropped after a crash). */
  bind(fn: () => void): () => void {
    const gen = this.generation;
    return () => {
      if (gen === this.generation) this.run(fn);
    };
  }

  /**
   * Timers of this life of the process: durations are measured on its own
   * (possibly fast or slow) clock, and a timer due while it is stopped
   * fires when it resumes.
   */
  timers(): Timers {
    return {
      now: () => this.#mono(),
      setTimer: (ms, fn) => {
        let live = true;
        const cb = this.bind(() => {
          if (live) fn();
        });
        this.#sched.after(ms / this.#rate, cb);
        return () => {
          live = false;
        };
      },
    };
  }

  /** SIGSTOP. */
  pause(): void {
    if (this.up) this.paused = true;
  }

  /** SIGCONT: what arrived meanwhile runs, in arrival order, one event each. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.#held;
    this.#held = [];
    for (const fn of held) this.#sched.after(0, this.bind(fn));
  }

  /** kill -9: nothing of this life runs again. */
  crash(): void {
    this.generation++;
    this.up = false;
    this.paused = false;
    this.#held = [];
  }

  /** Marks the process running again (the caller starts a new node). */
  restart(): void {
    this.up = true;
  }
}
