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
 *
 * `gfs-store` runs the same clients through apps/gfs's
 * `ReplicatedMasterStore`, the object the master's HTTP server uses:
 * every request first passes the server's gate (`serving()` from the
 * lease, else `servingConfirmed()`, else a redirect that has no effect),
 * mutations go through `store.propose` and lookups read `store.state`, so
 * the takeover (a new leader serves only once it has applied its
 * predecessor's entries) and the lease with its clock guard are simulated.
 */
import {
  encodeOp,
  type GfsErrorCode,
  isGfsError,
  MasterMachine,
  type MasterOp,
  type MasterOutcome,
  type MasterState,
  ReplicatedMasterStore,
} from "@strata/gfs";
import type { ReplicatedNode } from "@strata/replication";
import type { KvInput } from "./linearizability.ts";
import {
  NoEffect,
  type SimAnswer,
  type SimMachine,
  type SimOp,
  type SimReplica,
  type SimWorkload,
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

/** The master server's gate: serve from the lease, else confirm leadership, else redirect. */
async function gate(r: SimReplica): Promise<ReplicatedMasterStore> {
  const store = r.app as ReplicatedMasterStore;
  if (store.serving()) {
    r.leaseServed();
    return store;
  }
  if (await store.servingConfirmed()) return store;
  throw new NoEffect("not serving: redirected");
}

async function propose(
  r: SimReplica,
  op: MasterOp,
  signal: AbortSignal,
  expected: GfsErrorCode[],
): Promise<MasterOutcome> {
  let out: MasterOutcome;
  if (r.app instanceof ReplicatedMasterStore) {
    const store = await gate(r);
    try {
      out = { ok: true, result: await store.propose(op) };
    } catch (e) {
      if (!isGfsError(e) || e.code === "unavailable") throw e;
      if (e.code === "not_leader") throw new NoEffect(e.message);
      out = { ok: false, code: e.code, message: e.message };
    }
  } else {
    out = await r.node.propose(encodeOp(op), signal) as MasterOutcome;
  }
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
      let state: MasterState;
      if (r.app instanceof ReplicatedMasterStore) {
        state = (await gate(r)).state;
      } else {
        await r.readBarrier(signal);
        state = (r.machine as MasterMachine).state;
      }
      const f = state.visibleFile(path);
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

/** The GFS master's state machine: 25% create, 25% allocate, 8% delete, the rest lookups. */
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

/** The same clients through the master's `ReplicatedMasterStore` and its serving gate. */
export const gfsMasterStoreWorkload: SimWorkload = {
  ...gfsMasterWorkload,
  name: "gfs-store",
  async start(c, ports) {
    const store = await ReplicatedMasterStore.open(c.dataDir, {
      id: c.id,
      members: c.members,
      listen: c.listen,
      tickMs: c.tickMs,
      electionTicks: c.electionTicks,
      heartbeatTicks: c.heartbeatTicks,
      checkpointEvery: c.snapshotEntries,
      clock: c.clock,
    }, ports);
    return {
      node: store.node as ReplicatedNode<unknown>,
      machine: {
        get appliedIndex() {
          return store.appliedIndex;
        },
        snapshot: () => store.state.encode(),
      },
      app: store,
    };
  },
};
