import type { LsmCursor, StoredEntry } from "@strata/lsm";
import type { RowAssembler } from "./row_assembler.ts";
import type { Row } from "./types.ts";

/** What a {@link RowScan} reads: the entries, the rows they make, how many. */
export interface ScanPlan {
  cursor: LsmCursor;
  asm: RowAssembler;
  limit: number;
}

const DONE: IteratorResult<Row, undefined> = { done: true, value: undefined };

/**
 * The rows of a tablet scan as an async iterator, without an async
 * generator's machinery: `next` settles in the turn it is called unless a
 * table block must be read, so a scan over memtables and cached blocks
 * costs one resolved promise per row (an async generator costs several
 * turns per row). The plan is made by `open` at the first `next` (so bad
 * options are a rejected `next`, as with a generator); `return`, `throw`,
 * an error, the limit or the end of the range close the cursor. Calls of
 * `next` made while one waits for a block run after it, in order.
 */
export class RowScan implements AsyncGenerator<Row, undefined> {
  #open: (() => ScanPlan | undefined) | undefined;
  #plan: ScanPlan | undefined;
  #rows = 0;
  #busy: Promise<IteratorResult<Row, undefined>> | undefined;

  /** @param open makes the plan; undefined for a scan known to be empty. */
  constructor(open: () => ScanPlan | undefined) {
    this.#open = open;
  }

  next(): Promise<IteratorResult<Row, undefined>> {
    if (this.#busy !== undefined) {
      return this.#busy.then(() => this.next(), () => this.next());
    }
    let r:
      | IteratorResult<Row, undefined>
      | Promise<
        IteratorResult<Row, undefined>
      >;
    try {
      r = this.#step();
    } catch (e) {
      this.#end();
      return Promise.reject(e);
    }
    if (!(r instanceof Promise)) return Promise.resolve(r);
    const p = r.then((x) => {
      this.#busy = undefined;
      return x;
    }, (e) => {
      this.#busy = undefined;
      this.#end();
      throw e;
    });
    this.#busy = p;
    return p;
  }

  return(): Promise<IteratorResult<Row, undefined>> {
    this.#end();
    return Promise.resolve(DONE);
  }

  throw(e: unknown): Promise<IteratorResult<Row, undefined>> {
    this.#end();
    return Promise.reject(e);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  #step():
    | IteratorResult<Row, undefined>
    | Promise<IteratorResult<Row, undefined>> {
    const open = this.#open;
    if (open !== undefined) {
      this.#open = undefined;
      this.#plan = open();
      if (this.#plan !== undefined && this.#plan.limit <= 0) return this.#end();
    }
    while (true) {
      const plan = this.#plan;
      if (plan === undefined) return DONE;
      const e = plan.cursor.next();
      if (e instanceof Promise) {
        return e.then((x) => this.#take(x) ?? this.#step());
      }
      const r = this.#take(e);
      if (r !== undefined) return r;
    }
  }

  /** The result for one entry; undefined when it completes no row. */
  #take(
    e: StoredEntry | undefined,
  ): IteratorResult<Row, undefined> | undefined {
    const plan = this.#plan;
    // Ended (by return) while a block was read.
    if (plan === undefined) return DONE;
    if (e === undefined) {
      const last = plan.asm.finish();
      this.#end();
      return last === undefined ? DONE : { done: false, value: last };
    }
    const row = plan.asm.add(e.key, e.value);
    if (row === undefined) return undefined;
    if (++this.#rows >= plan.limit) this.#end();
    return { done: false, value: row };
  }

  #end(): IteratorResult<Row, undefined> {
    this.#open = undefined;
    const plan = this.#plan;
    this.#plan = undefined;
    plan?.cursor.close();
    return DONE;
  }
}
