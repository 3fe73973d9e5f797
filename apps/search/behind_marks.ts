import { join } from "node:path";
import { z } from "zod";
import { DirLock, writeFileAtomic } from "@strata/storage";

/** A replica that missed writes, as the coordinator records it. */
export interface BehindReplica {
  shard: number;
  replica: number;
}

/** Where the coordinator keeps which replicas are behind (see {@link BehindMarks}). */
export interface BehindStore {
  /** The replicas recorded as behind when the coordinator started. */
  readonly initial: readonly BehindReplica[];
  /** Replaces the record durably (resolves once it is on disk). */
  save(behind: readonly BehindReplica[]): Promise<void>;
}

const FILE = "behind.json";

const MarksSchema = z.object({
  version: z.literal(1),
  behind: z.array(z.object({
    shard: z.number().int().min(0),
    replica: z.number().int().min(0),
    url: z.string(),
  })),
});

/**
 * The durable part of hinted handoff: the set of replicas that missed
 * acknowledged writes and have not caught up yet, in `DIR/behind.json`
 * (written atomically: temp file, fsync, rename, fsync of the directory).
 * The queued writes themselves stay in memory; a coordinator that starts
 * with replicas recorded here repairs them by anti-entropy from a replica
 * of the shard that is not behind before they answer reads. Entries are
 * matched to the configuration by replica URL. One coordinator per
 * directory (directory lock).
 */
export class BehindMarks implements BehindStore {
  readonly initial: readonly BehindReplica[];
  readonly #dir: string;
  readonly #shards: readonly (readonly string[])[];
  readonly #lock: DirLock;
  /** What the file holds now, as a canonical string. */
  #saved: string;
  #tail: Promise<void> = Promise.resolve();

  private constructor(
    dir: string,
    shards: readonly (readonly string[])[],
    lock: DirLock,
    initial: BehindReplica[],
    saved: string,
  ) {
    this.#dir = dir;
    this.#shards = shards;
    this.#lock = lock;
    this.initial = initial;
    this.#saved = saved;
  }

  /**
   * Opens (or creates) `dir` and reads the record.
   * @param shards the coordinator's replica URLs, shards[s][r]
   * @param warn told about recorded replicas no longer in the configuration
   * @throws Error when the file exists but cannot be parsed (rather than
   *   start without knowing which replicas are behind); StorageError
   *   `locked` when another coordinator uses the directory.
   */
  static async open(
    dir: string,
    shards: readonly (readonly string[])[],
    warn: (message: string) => void = () => {},
  ): Promise<BehindMarks> {
    await Deno.mkdir(dir, { recursive: true });
    const lock = await DirLock.acquire(dir);
    try {
      let text: string | null = null;
      try {
        text = await Deno.readTextFile(join(dir, FILE));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      const initial: BehindReplica[] = [];
      if (text !== null) {
        let parsed;
        try {
          parsed = MarksSchema.parse(JSON.parse(text));
        } catch (e) {
          throw new Error(
            `${join(dir, FILE)} is not a valid record of replicas behind: ${
              e instanceof Error ? e.message.slice(0, 200) : e
            }`,
          );
        }
        for (const b of parsed.behind) {
          const at = locate(shards, b.url);
          if (at === null) {
            warn(
              `replica ${b.url} (shard ${b.shard}) was behind but is not in --shards; not repaired`,
            );
          } else initial.push(at);
        }
      }
      return new BehindMarks(dir, shards, lock, initial, text ?? "");
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Writes the record if it changed; calls run one after another. */
  save(behind: readonly BehindReplica[]): Promise<void> {
    const run = this.#tail.then(async () => {
      const text = JSON.stringify({
        version: 1,
        behind: [...behind]
          .sort((a, b) => a.shard - b.shard || a.replica - b.replica)
          .map((b) => ({
            ...b,
            url: this.#shards[b.shard]![b.replica]!,
          })),
      });
      if (text === this.#saved) return;
      await writeFileAtomic(
        join(this.#dir, FILE),
        new TextEncoder().encode(text),
      );
      this.#saved = text;
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Waits for pending saves and releases the directory. */
  async close(): Promise<void> {
    await this.#tail;
    this.#lock.release();
  }
}

function locate(
  shards: readonly (readonly string[])[],
  url: string,
): BehindReplica | null {
  for (let s = 0; s < shards.length; s++) {
    const r = shards[s]!.indexOf(url);
    if (r >= 0) return { shard: s, replica: r };
  }
  return null;
}
