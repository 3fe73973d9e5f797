/**
 * Test helper: puts and gets sent through a {@link KvClient} and recorded
 * as operations of a history for `checkKvHistory` (`@strata/sim`). A put
 * whose outcome is unknown (a KvClientError) stays in the history, open:
 * it may have applied. A failed get has no effect and is left out.
 */
import type { KvOperation } from "@strata/sim";
import { type KvClient, KvClientError } from "./client.ts";

const decoder = new TextDecoder();

/** Records operations in `history`, timed by `now` (monotonic). */
export class OpRecorder {
  readonly history: KvOperation[] = [];
  constructor(readonly now: () => number = () => performance.now()) {}

  /** Puts `value`; @returns whether it was acknowledged. */
  async put(
    clientId: number,
    kv: KvClient,
    key: string,
    value: string,
    call = this.now(),
  ): Promise<boolean> {
    const op: KvOperation = {
      clientId,
      input: { op: "put", key, value },
      call,
    };
    this.history.push(op);
    try {
      await kv.put(key, value);
    } catch (e) {
      if (!(e instanceof KvClientError)) throw e;
      return false;
    }
    op.return = this.now();
    op.output = { ok: true };
    return true;
  }

  /** Gets `key`; @returns its value (null: absent), or undefined when the read failed. */
  async get(
    clientId: number,
    kv: KvClient,
    key: string,
    consistency?: "linearizable" | "lease" | "stale",
    call = this.now(),
  ): Promise<{ value: string | null } | undefined> {
    let value: string | null;
    try {
      const e = await kv.get(key, consistency);
      value = e ? decoder.decode(e.value) : null;
    } catch (e) {
      if (!(e instanceof KvClientError)) throw e;
      return undefined;
    }
    this.history.push({
      clientId,
      input: { op: "get", key },
      call,
      return: this.now(),
      output: { value },
    });
    return { value };
  }
}
