import type { Hono } from "hono";
import { z } from "zod";
import { authHeaders, readJson, readQuery } from "@strata/edge";
import { need } from "../shared/access.ts";
import { GfsError, isGfsError } from "../shared/gfs_error.ts";
import { readRawBytes, requestBody } from "../shared/http_json.ts";
import {
  HandleParam,
  PushedSchema,
  RecordsQuerySchema,
  WriteSchema,
} from "../shared/messages.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

const DataId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
/** Reads up to this size are answered as one buffer, larger ones streamed. */
const SMALL_READ_BYTES = 256 * 1024;

/**
 * Client data routes: the push chain (`POST /v1/push/:dataId`, from a
 * client or the previous hop), a piece write at the primary, record
 * appends at the primary, and chunk reads (also a clone's source).
 */
export function clientDataRoutes(app: Hono, cs: ChunkserverService): void {
  const { cfg, store, stats } = cs;

  app.post("/v1/push/:dataId", need.write, async (c) => {
    const dataId = DataId.parse(c.req.param("dataId"));
    const chainRaw = c.req.query("chain") ?? "";
    const chain = chainRaw === "" ? [] : await cs.peers.origins(
      z.array(z.string().url()).max(15).parse(chainRaw.split(",")),
      "push chain member",
    );
    const body = requestBody(c);
    if (body === null) throw new GfsError("bad_request", "push needs a body");
    // Pipelined as in GFS: bytes go on to the next server in the chain while
    // they are still arriving here. The same chunks are handed on (no
    // ReadableStream.tee, which clones every chunk).
    let forward: ReadableStreamDefaultController<Uint8Array> | null = null;
    let downstream: Promise<string[]> = Promise.resolve([]);
    if (chain.length > 0) {
      const out = new ReadableStream<Uint8Array>({
        start(ctl) {
          forward = ctl;
        },
        cancel() {
          forward = null;
        },
      });
      const rest = chain.slice(1).join(",");
      downstream = fetch(
        `${chain[0]}/v1/push/${dataId}?chain=${encodeURIComponent(rest)}`,
        {
          method: "POST",
          headers: authHeaders(cs.peerToken),
          client: cs.client,
          body: out,
          duplex: "half",
          signal: AbortSignal.timeout(120_000),
        } as RequestInit,
      ).then(async (res) => PushedSchema.parse(await res.json()).received)
        .catch(() => {
          forward = null;
          return [];
        });
    }
    const hand = (
      f: (ctl: ReadableStreamDefaultController<Uint8Array>) => void,
    ) => {
      const ctl = forward as ReadableStreamDefaultController<Uint8Array> | null;
      if (ctl === null) return;
      try {
        f(ctl);
      } catch {
        forward = null; // the next hop went away; keep receiving here
      }
    };
    const parts: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const part of body) {
        total += part.length;
        if (total > cfg.chunkBytes) {
          throw new GfsError(
            "too_large",
            `push larger than a chunk (${cfg.chunkBytes} bytes)`,
          );
        }
        parts.push(part);
        hand((ctl) => ctl.enqueue(part));
      }
      hand((ctl) => ctl.close());
    } catch (e) {
      hand((ctl) => ctl.error(e));
      throw e;
    }
    const data = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.length;
    }
    cs.staging.set(dataId, { data, at: Date.now() });
    return c.json({ received: [cs.url, ...(await downstream)] });
  });

  app.post("/v1/chunks/:handle/write", need.write, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const w = await readJson(c, WriteSchema);
    w.secondaries = await cs.peers.origins(w.secondaries, "secondary");
    const data = cs.staged(w.dataId);
    cs.checkLease(handle, w.version);
    // Numbered and queued locally in one synchronous step, so the local
    // order is the numbering; secondaries follow the numbers.
    const seq = cs.order.takeSeq(handle, w.version);
    const [length, f] = await Promise.all([
      store.write(handle, w.version, w.offset, data),
      cs.secondaries.apply(w.secondaries, handle, {
        version: w.version,
        offset: w.offset,
        dataId: w.dataId,
        seq,
      }),
    ]);
    const out = { ok: [cs.url, ...f.ok], failed: f.failed, length };
    cs.staging.delete(w.dataId);
    stats.writes++;
    stats.writeBytes += data.length;
    return c.json(out);
  });

  app.post("/v1/chunks/:handle/records", need.write, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const q = readQuery(c, RecordsQuerySchema);
    const secondaries = await cs.peers.origins(
      q.secondaries === "" ? [] : q.secondaries.split(","),
      "secondary",
    );
    const data = await readRawBytes(c, cfg.chunkBytes / 4);
    if (data.length === 0) {
      throw new GfsError("bad_request", "a record append needs a body");
    }
    cs.checkLease(handle, q.version);
    const r = await cs.appends.submit(handle, {
      version: q.version,
      secondaries,
      data,
    });
    if ("error" in r) throw r.error;
    return c.json({ offset: r.offset });
  });

  // Built once: a zod schema built per request costs more than the read.
  const readQuerySchema = z.object({
    version: z.coerce.number().int().min(1).optional(),
    offset: z.coerce.number().int().min(0).default(0),
    length: z.coerce.number().int().min(0).max(cfg.chunkBytes).default(
      cfg.chunkBytes,
    ),
  });

  app.get("/v1/chunks/:handle", need.read, async (c) => {
    const handle = HandleParam.parse(c.req.param("handle"));
    const q = readQuery(c, readQuerySchema);
    try {
      // Every block is verified before the first byte goes out (so a bad
      // one is still an error status), then the blocks are sent as they
      // are: copying them into one buffer cost more than the HTTP stream.
      const parts = await store.readParts(
        handle,
        q.offset,
        q.length,
        q.version,
      );
      let bytes = 0;
      for (const p of parts) bytes += p.length;
      stats.reads++;
      stats.readBytes += bytes;
      const headers = {
        "content-type": "application/octet-stream",
        "content-length": String(bytes),
        "x-chunk-length": String(store.meta(handle)?.length ?? 0),
      };
      // A small read (a random block read: one or two 64 KiB blocks) goes
      // out as one buffer: a stream body costs more event-loop turns than
      // the copy, which matters for latency; large reads stream their blocks.
      if (bytes <= SMALL_READ_BYTES) {
        if (parts.length === 1) {
          return c.body(parts[0]! as Uint8Array<ArrayBuffer>, 200, headers);
        }
        const one = new Uint8Array(bytes);
        for (let k = 0, o = 0; k < parts.length; o += parts[k]!.length, k++) {
          one.set(parts[k]!, o);
        }
        return c.body(one, 200, headers);
      }
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(ctl) {
          if (i < parts.length) ctl.enqueue(parts[i++]!);
          else ctl.close();
        },
      });
      return c.body(body, 200, headers);
    } catch (e) {
      if (isGfsError(e, "corrupt")) cs.reportCorrupt(handle);
      throw e;
    }
  });
}
