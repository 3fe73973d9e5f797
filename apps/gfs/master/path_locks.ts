import { ancestors, pathDepth } from "../shared/gfs_path.ts";

/** One lock a namespace operation needs. */
export interface LockRequest {
  /** Normalised path. */
  path: string;
  /** Shared (read) or exclusive (write). */
  mode: "read" | "write";
}

interface LockState {
  readers: number;
  writer: boolean;
  waiters: { mode: "read" | "write"; wake: () => void }[];
}

/**
 * Per-path reader/writer locks for namespace operations, as in the GFS
 * paper: an operation on /d1/d2/leaf takes read locks on /d1 and /d1/d2 and
 * a read or write lock on the leaf. Because a directory is only ever
 * read-locked by operations below it, two creations in one directory run
 * concurrently, while a write lock on a directory (a snapshot or rename of
 * it) excludes everything beneath.
 *
 * Deadlock freedom: every acquisition takes its locks in one global order
 * (depth first, then lexicographic), as the paper prescribes. Waiters are
 * served first-come so a writer is not starved by a stream of readers.
 */
export class PathLocks {
  readonly #locks = new Map<string, LockState>();

  /** Locks an operation on `path` needs: read on ancestors, `leaf` on the path. */
  static forPath(path: string, leaf: "read" | "write"): LockRequest[] {
    return [
      ...ancestors(path).map((p) => ({ path: p, mode: "read" as const })),
      { path, mode: leaf },
    ];
  }

  /** Number of paths with a held or awaited lock (for tests and metrics). */
  get size(): number {
    return this.#locks.size;
  }

  /**
   * Acquires all `requests` (merged: write wins over read on one path) in
   * the global order.
   * @returns a release function (idempotent).
   */
  async acquire(requests: readonly LockRequest[]): Promise<() => void> {
    const merged = new Map<string, "read" | "write">();
    for (const r of requests) {
      if (merged.get(r.path) !== "write") merged.set(r.path, r.mode);
    }
    const ordered = [...merged].sort(([a], [b]) =>
      pathDepth(a) - pathDepth(b) || (a < b ? -1 : a > b ? 1 : 0)
    );
    const held: [string, "read" | "write"][] = [];
    for (const [path, mode] of ordered) {
      await this.#lockOne(path, mode);
      held.push([path, mode]);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const [path, mode] of held.reverse()) this.#unlockOne(path, mode);
    };
  }

  /** Runs `fn` holding the locks. */
  async with<T>(
    requests: readonly LockRequest[],
    fn: () => Promise<T> | T,
  ): Promise<T> {
    const release = await this.acquire(requests);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #state(path: string): LockState {
    let s = this.#locks.get(path);
    if (s === undefined) {
      s = { readers: 0, writer: false, waiters: [] };
      this.#locks.set(path, s);
    }
    return s;
  }

  #lockOne(path: string, mode: "read" | "write"): Promise<void> {
    const s = this.#state(path);
    const free = s.waiters.length === 0 &&
      (mode === "read" ? !s.writer : !s.writer && s.readers === 0);
    if (free) {
      if (mode === "read") s.readers++;
      else s.writer = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => s.waiters.push({ mode, wake: resolve }));
  }

  #unlockOne(path: string, mode: "read" | "write"): void {
    const s = this.#locks.get(path);
    if (s === undefined) return;
    if (mode === "read") s.readers--;
    else s.writer = false;
    // Grant to waiters in arrival order: all leading readers, or one writer.
    while (s.waiters.length > 0) {
      const next = s.waiters[0]!;
      if (next.mode === "read" && !s.writer) {
        s.waiters.shift();
        s.readers++;
        next.wake();
      } else if (next.mode === "write" && !s.writer && s.readers === 0) {
        s.waiters.shift();
        s.writer = true;
        next.wake();
        break;
      } else break;
    }
    if (s.readers === 0 && !s.writer && s.waiters.length === 0) {
      this.#locks.delete(path);
    }
  }
}
