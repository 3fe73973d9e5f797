/**
 * raft-kv (apps/kv's real `KvStateMachine`) as a {@link SimWorkload}: put,
 * cas, delete and get on one to three keys.
 */
import {
  type KvCommand,
  KvCommandMessage,
  type KvResult,
  KvStateMachine,
} from "@strata/kv";
import type { CommandStateMachine } from "@strata/replication";
import type { KvInput } from "./linearizability.ts";
import type { SimMachine, SimOp, SimWorkload } from "./sim_workload.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The raft-kv state machine as the replicated log sees it (apps/kv's KvReplica without watches). */
class KvMachine
  implements CommandStateMachine<KvResult | undefined>, SimMachine {
  readonly store = new KvStateMachine();
  get appliedIndex(): number {
    return this.store.appliedIndex;
  }
  apply(index: number, command: Uint8Array): KvResult | undefined {
    return this.store.apply(index, KvCommandMessage.decode(command))?.result;
  }
  skip(index: number): void {
    this.store.skip(index);
  }
  snapshot(): Uint8Array {
    return this.store.snapshot();
  }
  restore(data: Uint8Array): void {
    this.store.restore(data);
  }
}

function op(input: KvInput): SimOp {
  return {
    input,
    async run(r, signal) {
      const m = r.machine as KvMachine;
      if (input.op === "get") {
        await r.readBarrier(signal);
        const kv = m.store.get(input.key);
        return { output: { value: kv ? dec.decode(kv.value) : null } };
      }
      let cmd: KvCommand;
      if (input.op === "put") {
        cmd = { op: "put", key: input.key, value: enc.encode(input.value) };
      } else if (input.op === "cas") {
        cmd = {
          op: "cas",
          key: input.key,
          expectValue: input.expected === null
            ? null
            : enc.encode(input.expected),
          value: enc.encode(input.value),
        };
      } else {
        cmd = { op: "delete", key: input.key };
      }
      const res = await r.node.propose(
        KvCommandMessage.encode(cmd),
        signal,
      ) as KvResult | undefined;
      if (res?.op === "cas") return { output: { ok: res.succeeded } };
      return { output: { ok: true } };
    },
  };
}

/** raft-kv: 30% put, 12% cas, 3% delete, 55% get. */
export const kvWorkload: SimWorkload = {
  name: "kv",
  newMachine: () => new KvMachine(),
  client(c, cp, keys) {
    let seq = 0;
    const seen: string[] = [];
    return () => {
      const key = cp.pick(keys);
      const r = cp.float();
      if (r < 0.3) {
        const value = `${c}.${++seq}`;
        seen.push(value);
        return op({ op: "put", key, value });
      }
      if (r < 0.42) {
        const expected = seen.length > 0 && cp.chance(0.8)
          ? cp.pick(seen)
          : null;
        const value = `${c}.${++seq}`;
        seen.push(value);
        return op({ op: "cas", key, expected, value });
      }
      if (r < 0.45) return op({ op: "delete", key });
      return op({ op: "get", key });
    };
  },
  read: (key) => op({ op: "get", key }),
};
