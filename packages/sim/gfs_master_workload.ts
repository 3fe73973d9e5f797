/**
 * The GFS master's replicated state (apps/gfs's real `MasterMachine` over
 * `MasterState`) as a {@link SimWorkload}: clients create append-mode
 * files, allocate their next chunk, delete them (to the trash) and look
 * them up, on one to three paths.
 *
 * Each path is a key of the checker's model whose value is
 * `<createdAt>:<chunk count>` of the visible file, or null: every create
 * carries a unique `now`, so `createdAt` names one file for good.
 * - create → cas(null → `t:0`) (a `conflict` rejection: the cas failed);
 * - allocate chunk k of the file the client last saw → cas(`t:k` → `t:k+1`)
 *   (`not_found`, `conflict` or `bad_request`: the cas failed);
 * - delete → delete (a `not_found` rejection: a read that saw no file);
 * - lookup (a read through the chosen consistency) → get.
 */
import {
  encodeOp,
  type GfsErrorCode,
  MasterMachine,
  type MasterOp,
  type MasterOutcome,
} from "@strata/gfs";
import type { KvInput } from "./linearizability.ts";
import type {
  SimAnswer,
  SimMachine,
  SimOp,
  SimReplica,
  SimWorkload,
} from "./sim_workload.ts";

/** What a client last saw of a path. */
interface Seen {
  fileId: number;
  createdAt: number;
  chunks: number;
}

const value = (createdAt: number, chunks: number) => `${createdAt}:${chunks}`;

/** A rejection the model cannot explain: the workload or the machine is wrong. */
export class UnexpectedRejection extends Error {}

async function propose(
  r: SimReplica,
  op: MasterOp,
  signal: AbortSignal,
  expected: GfsErrorCode[],
): Promise<MasterOutcome> {
  const out = await r.node.propose(encodeOp(op), signal) as MasterOutcome;
  if (!out.ok && !expected.includes(out.code)) {
    throw new UnexpectedRejection(
      `${op.t} rejected: ${out.code} ${out.message}`,
    );
  }
  return out;
}

function lookup(path: string, known?: Map<string, Seen>): SimOp {
  return {
    input: { op: "get", key: path },
    async run(r, signal) {
      await r.readBarrier(signal);
      const f = (r.machine as MasterMachine).state.visibleFile(path);
      if (f === undefined) {
        known?.delete(path);
        return { output: { value: null } };
      }
      known?.set(path, {
        fileId: f.id,
        createdAt: f.createdAt,
        chunks: f.chunks.length,
      });
      return { output: { value: value(f.createdAt, f.chunks.length) } };
    },
  };
}

/** The GFS master: 25% create, 25% allocate, 8% delete, the rest lookups. */
export const gfsMasterWorkload: SimWorkload = {
  name: "gfs",
  newMachine: () => new MasterMachine() as SimMachine,
  client(c, cp, keys) {
    let seq = 0;
    const known = new Map<string, Seen>();
    return () => {
      const path = `/sim/${cp.pick(keys)}`;
      const r = cp.float();
      // Unique per operation, so a file's createdAt (and trash path) names it.
      const now = c * 1_000_000 + ++seq;
      const seen = known.get(path);
      if (r < 0.25) {
        const input: KvInput = {
          op: "cas",
          key: path,
          expected: null,
          value: value(now, 0),
        };
        return {
          input,
          async run(rep, signal): Promise<SimAnswer> {
            const out = await propose(
              rep,
              {
                t: "create",
                path,
                mode: "append",
                replication: 3,
                now,
              },
              signal,
              ["conflict"],
            );
            if (out.ok && out.result.t === "create") {
              known.set(path, {
                fileId: out.result.fileId,
                createdAt: now,
                chunks: 0,
              });
            }
            return { output: { ok: out.ok } };
          },
        };
      }
      if (r < 0.5 && seen !== undefined) {
        const { fileId, createdAt, chunks } = seen;
        const input: KvInput = {
          op: "cas",
          key: path,
          expected: value(createdAt, chunks),
          value: value(createdAt, chunks + 1),
        };
        return {
          input,
          async run(rep, signal): Promise<SimAnswer> {
            const out = await propose(
              rep,
              {
                t: "allocate",
                path,
                fileId,
                index: chunks,
                now,
              },
              signal,
              ["not_found", "conflict", "bad_request"],
            );
            if (out.ok) {
              known.set(path, { fileId, createdAt, chunks: chunks + 1 });
            }
            return { output: { ok: out.ok } };
          },
        };
      }
      if (r < 0.58) {
        return {
          input: { op: "delete", key: path },
          async run(rep, signal): Promise<SimAnswer> {
            const out = await propose(rep, { t: "delete", path, now }, signal, [
              "not_found",
            ]);
            known.delete(path);
            return out.ok
              ? { output: { ok: true } }
              : { input: { op: "get", key: path }, output: { value: null } };
          },
        };
      }
      return lookup(path, known);
    };
  },
  read: (key) => lookup(`/sim/${key}`),
};
