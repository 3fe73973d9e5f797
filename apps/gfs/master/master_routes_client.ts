import type { Hono } from "hono";
import { need } from "../shared/access.ts";
import { z } from "zod";
import { GfsError } from "../shared/gfs_error.ts";
import { parsePath, parseTrashPath } from "../shared/gfs_path.ts";
import { readJson, readQuery } from "@strata/edge";
import type { MasterService } from "./master_service.ts";
import {
  AbandonSchema,
  AllocateSchema,
  AppendTargetSchema,
  CompleteSchema,
  CreateSchema,
  type WriteTarget,
} from "../shared/messages.ts";
import { PathLocks } from "./path_locks.ts";
import { writeQuorum } from "./placement.ts";

const LocateQuery = z.object({ path: z.string() });

/** Client RPCs: create, allocate, complete, abandon, locate, append-target. */
export function clientRoutes(app: Hono, m: MasterService): void {
  app.post("/v1/rpc/create", need.write, async (c) => {
    const b = await readJson(c, CreateSchema);
    const path = parsePath(b.path);
    if (parseTrashPath(path) || path.startsWith("/.trash")) {
      throw new GfsError("bad_request", "the trash is read-only");
    }
    const replication = b.replication ?? m.cfg.replication;
    const firstChunk = b.allocate === true && b.mode === "upload";
    const out = await m.locks.with(
      PathLocks.forPath(path, "write"),
      async () => {
        const r = await m.propose({
          t: "create",
          path,
          mode: b.mode,
          replication,
          now: Date.now(),
          ...(firstChunk ? { firstChunk } : {}),
        });
        const fileId = r.t === "create" ? r.fileId : 0;
        let first: WriteTarget | null = null;
        if (r.t === "create" && r.handle !== undefined) {
          // Placement failing is no reason to fail the create: the client
          // then allocates chunk 0 again itself, retrying as for any chunk.
          try {
            first = b.grant === true && m.grants
              ? m.placeGranted(r.handle, replication, fileId)
              : await m.placeNew(r.handle, replication);
          } catch {
            first = null;
          }
        }
        return { fileId, first };
      },
    );
    return c.json({
      fileId: out.fileId,
      chunkBytes: m.cfg.chunkBytes,
      replication,
      ...(firstChunk ? { first: out.first } : {}),
    });
  });

  app.post("/v1/rpc/allocate", need.write, async (c) => {
    const b = await readJson(c, AllocateSchema);
    const path = parsePath(b.path);
    const t = await m.locks.with(PathLocks.forPath(path, "write"), async () => {
      const r = await m.propose({
        t: "allocate",
        path,
        fileId: b.fileId,
        index: b.index,
        now: Date.now(),
      });
      if (r.t !== "allocate") throw new GfsError("internal", "allocate failed");
      const f = m.store.state.namespace.get(path)!;
      // Only upload chunks: an append chunk's replica set is logged before
      // any append lands (placeNew), which a grant would skip.
      const avoid = b.avoid ?? [];
      if (b.grant === true && m.grants && f.mode === "upload") {
        return m.placeGranted(r.handle, f.replication, b.fileId, avoid);
      }
      return await m.placeNew(r.handle, f.replication, avoid);
    });
    return c.json(t);
  });

  app.post("/v1/rpc/complete", need.write, async (c) => {
    const b = await readJson(c, CompleteSchema);
    const path = parsePath(b.path);
    await m.locks.with(PathLocks.forPath(path, "write"), async () => {
      const f = m.store.state.namespace.get(path);
      if (f === undefined || f.id !== b.fileId) {
        throw new GfsError("not_found", `${path} not found`);
      }
      if (
        b.chunks.length !== f.chunks.length ||
        b.chunks.some((ch, i) => ch.handle !== f.chunks[i])
      ) {
        throw new GfsError(
          "bad_request",
          "chunk list does not match the file's chunks",
        );
      }
      const ids = m.urlToId();
      const quorum = writeQuorum(f.replication);
      for (const ch of b.chunks) {
        const good = new Set(
          ch.servers.map((u) => ids.get(u)).filter((x): x is string =>
            x !== undefined
          ),
        );
        if (good.size < quorum) {
          throw new GfsError(
            "unavailable",
            `chunk ${ch.handle} is on ${good.size} servers; a quorum is ${quorum}`,
          );
        }
        for (
          const sid of [...(m.core.locations.get(ch.handle)?.keys() ?? [])]
        ) {
          if (!good.has(sid)) m.core.dropReplica(ch.handle, sid);
        }
        const version = m.store.state.chunks.get(ch.handle)!.version;
        for (const sid of good) {
          m.core.addLocation(ch.handle, sid, version, ch.length, Date.now());
        }
      }
      await m.propose({
        t: "complete",
        path,
        fileId: b.fileId,
        lengths: b.chunks.map((x) => x.length),
        now: Date.now(),
      });
      for (const ch of b.chunks) m.core.leases.revoke(ch.handle);
    });
    return c.json({ ok: true });
  });

  app.post("/v1/rpc/abandon", need.write, async (c) => {
    const b = await readJson(c, AbandonSchema);
    const path = parsePath(b.path);
    await m.locks.with(
      PathLocks.forPath(path, "write"),
      () => m.propose({ t: "abandon", path, fileId: b.fileId }),
    );
    return c.json({ ok: true });
  });

  app.get("/v1/rpc/locate", need.read, async (c) => {
    const q = readQuery(c, LocateQuery);
    const path = parsePath(q.path);
    const out = await m.locks.with(PathLocks.forPath(path, "read"), () => {
      const { file, chunks } = m.core.locate(path);
      return {
        fileId: file.id,
        length: m.core.fileLength(file),
        mode: file.mode,
        chunkBytes: m.cfg.chunkBytes,
        chunks,
      };
    });
    return c.json(out);
  });

  app.post("/v1/rpc/append-target", need.write, async (c) => {
    const b = await readJson(c, AppendTargetSchema);
    const path = parsePath(b.path);
    const t = await m.locks.with(PathLocks.forPath(path, "write"), async () => {
      let f = m.store.state.namespace.get(path);
      if (f === undefined) {
        if (!b.create) throw new GfsError("not_found", `${path} not found`);
        await m.propose({
          t: "create",
          path,
          mode: "append",
          replication: b.replication ?? m.cfg.replication,
          now: Date.now(),
        });
        f = m.store.state.namespace.get(path)!;
      }
      if (f.mode !== "append" || f.state !== "complete") {
        throw new GfsError("conflict", `${path} is not an append file`);
      }
      const last = f.chunks[f.chunks.length - 1];
      if (last === undefined || last === b.afterHandle) {
        const r = await m.propose({
          t: "allocate",
          path,
          fileId: f.id,
          index: f.chunks.length,
          now: Date.now(),
        });
        if (r.t !== "allocate") {
          throw new GfsError("internal", "allocate failed");
        }
        return await m.placeNew(r.handle, f.replication);
      }
      if (b.renew) m.core.leases.revoke(last);
      return await m.leaseFor(last);
    });
    return c.json(t);
  });
}
