/**
 * `crdt_log.ts`: a replica's durable copy of one CRDT range, in its own
 * data directory: one NDJSON file of `{"key","value"}` lines, each a key's
 * whole state after a change. States only grow (each is the join of all
 * before it), so loading merges every line, in any order; a torn last
 * line after kill -9 is skipped (it was never acknowledged). Appends are
 * group-committed: the changes that queue while one write and fsync run
 * go in the next one. The file is rewritten with one line per key when it
 * is opened and whenever it grows past 4 lines per key (plus 10,000).
 */
import { join } from "node:path";
import { z } from "zod";
import {
  crdtKeySchema,
  type CrdtValue,
  crdtValueSchema,
  mergeValue,
} from "./crdt_value.ts";

const lineSchema = z.strictObject({
  key: crdtKeySchema,
  value: crdtValueSchema,
});
const encoder = new TextEncoder();
const lineOf = (key: string, value: CrdtValue) =>
  JSON.stringify({ key, value }) + "\n";

/** A range's log file. */
export class CrdtLog {
  #file: Deno.FsFile;
  #lines: number;
  #queue: { text: string; done: PromiseWithResolvers<void> }[] = [];
  #running = false;
  #closed = false;

  private constructor(
    private readonly path: string,
    file: Deno.FsFile,
    lines: number,
    private readonly snapshot: () => Map<string, CrdtValue>,
  ) {
    this.#file = file;
    this.#lines = lines;
  }

  /**
   * Loads the range kept in `dir` (empty when new) and opens it for
   * appending. `snapshot` gives the range's current states when the file
   * is rewritten.
   */
  static async open(
    dir: string,
    snapshot: () => Map<string, CrdtValue>,
  ): Promise<
    { log: CrdtLog; values: Map<string, CrdtValue>; skipped: number }
  > {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, "log.ndjson");
    const values = new Map<string, CrdtValue>();
    let skipped = 0;
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      let parsed: z.infer<typeof lineSchema> | undefined;
      try {
        parsed = lineSchema.parse(JSON.parse(raw));
      } catch {
        skipped++; // a torn write: never acknowledged
        continue;
      }
      const old = values.get(parsed.key);
      values.set(
        parsed.key,
        old ? mergeValue(old, parsed.value) : parsed.value,
      );
    }
    const file = await rewrite(path, values);
    return {
      log: new CrdtLog(path, file, values.size, snapshot),
      values,
      skipped,
    };
  }

  /** Appends key states; resolves once they are on disk (fsynced). */
  append(entries: Iterable<[string, CrdtValue]>): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the log is closed"));
    let text = "";
    for (const [k, v] of entries) {
      text += lineOf(k, v);
      this.#lines++;
    }
    const done = Promise.withResolvers<void>();
    this.#queue.push({ text, done });
    if (!this.#running) this.#run();
    return done.promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length) {
        const batch = this.#queue.splice(0);
        try {
          await writeAll(this.#file, batch.map((b) => b.text).join(""));
          await this.#file.syncData();
          batch.forEach((b) => b.done.resolve());
        } catch (e) {
          batch.forEach((b) => b.done.reject(e));
          continue;
        }
        const live = this.snapshot();
        if (this.#lines > 4 * live.size + 10_000) {
          const old = this.#file;
          this.#file = await rewrite(this.path, live);
          this.#lines = live.size;
          old.close();
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Waits for queued appends, then closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running) await new Promise((r) => setTimeout(r, 5));
    this.#file.close();
  }
}

async function writeAll(file: Deno.FsFile, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** Writes one line per key to a new file, fsynced, renamed over `path`. */
async function rewrite(
  path: string,
  values: Map<string, CrdtValue>,
): Promise<Deno.FsFile> {
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let chunk = "";
    for (const [k, v] of values) {
      chunk += lineOf(k, v);
      if (chunk.length > 1 << 20) {
        await writeAll(f, chunk);
        chunk = "";
      }
    }
    await writeAll(f, chunk);
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
  return await Deno.open(path, { append: true });
}
