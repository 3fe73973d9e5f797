import { type ClusterSecrets, type Role, roleAllows } from "@strata/edge";
import { isStorageError } from "@strata/storage";
import {
  type Envelope,
  listenTcp,
  type TcpServer,
  type Transport,
} from "@strata/transport";
import type { z } from "zod";
import {
  type AppendRecord,
  type ApplyBytes,
  DATA_FRAME_MAX_BYTES,
  DATA_READ_MAX_BYTES,
  type DataMessages,
  dataMessages,
  type DataRefused,
  type ReadChunk,
} from "../shared/data_protocol.ts";
import { GfsError, gfsToEdgeError, isGfsError } from "../shared/gfs_error.ts";
import type { ChunkserverService } from "./chunkserver_service.ts";

type Reply = Envelope<DataMessages>;

/** Options of {@link startDataPort}. */
export interface DataPortOptions {
  /** Interface to bind (the HTTP listener's). */
  host: string;
  /** Port (0: a free one). */
  port: number;
  /**
   * The cell's secrets: a client proves one of the users' tokens (its role
   * is that token's) or the peer secret (as admin, like the HTTP guard) in
   * the transport's HMAC handshake. Undefined: auth is off (loopback only).
   */
  secrets?: ClusterSecrets;
}

/**
 * The chunkserver's data port: chunk reads and record appends over
 * strata's framed TCP transport, served by the same service calls as the
 * HTTP routes (`chunkserver_routes_client.ts`), and a primary's forwarded
 * record-append batches (as `apply-bytes` in `chunkserver_routes_peer.ts`).
 * Many calls are in flight per connection (the transport's call ids). A connection that sends a
 * frame that does not decode or validate is closed by the transport (with
 * a goodbye naming the reason); other connections are not affected.
 */
export function startDataPort(
  cs: ChunkserverService,
  options: DataPortOptions,
): TcpServer<DataMessages> {
  const s = options.secrets;
  const roles = s === undefined ? undefined : new Map<string, Role>([
    [s.tokens.read, "read"],
    [s.tokens.write, "write"],
    [s.tokens.admin, "admin"],
    [s.peerSecret, "admin"],
  ]);
  const roleOf = (from: Transport<DataMessages>): Role | undefined => {
    if (roles === undefined) return "admin";
    const proven = (from as { provenSecret?: unknown }).provenSecret;
    return typeof proven === "string" ? roles.get(proven) : undefined;
  };
  const need = (from: Transport<DataMessages>, role: Role) => {
    const has = roleOf(from);
    if (has === undefined || !roleAllows(has, role)) {
      throw new GfsError(
        "forbidden",
        `this needs the ${role} token (or a higher one)`,
      );
    }
  };

  // The peer routes' rule (`need.peer`): only the peer secret, no user token.
  const needPeer = (from: Transport<DataMessages>) => {
    if (s === undefined) return;
    const proven = (from as { provenSecret?: unknown }).provenSecret;
    if (proven !== s.peerSecret) {
      throw new GfsError("forbidden", "this needs the cell's peer secret");
    }
  };

  const apply = async (
    m: z.output<typeof ApplyBytes.schema>,
  ): Promise<Reply> => {
    if (m.data.length > cs.cfg.chunkBytes) {
      throw new GfsError("too_large", "a batch is at most one chunk");
    }
    const length = await cs.applyBytes(m.handle, m, m.data);
    cs.stats.dataPortApplies++;
    return { type: "BytesApplied", message: { length } };
  };

  const read = async (
    m: z.output<typeof ReadChunk.schema>,
  ): Promise<Reply> => {
    if (m.length > DATA_READ_MAX_BYTES || m.length > cs.cfg.chunkBytes) {
      throw new GfsError(
        "bad_request",
        `a read over the data port is at most ${DATA_READ_MAX_BYTES} bytes`,
      );
    }
    try {
      const parts = await cs.store.readParts(
        m.handle,
        m.offset,
        m.length,
        m.version ?? undefined,
      );
      let bytes: Uint8Array;
      if (parts.length === 1) bytes = parts[0]!;
      else {
        let n = 0;
        for (const p of parts) n += p.length;
        bytes = new Uint8Array(n);
        for (let k = 0, o = 0; k < parts.length; o += parts[k]!.length, k++) {
          bytes.set(parts[k]!, o);
        }
      }
      cs.stats.reads++;
      cs.stats.readBytes += bytes.length;
      return {
        type: "ChunkBytes",
        message: { bytes: bytes as Uint8Array<ArrayBuffer> },
      };
    } catch (e) {
      if (isCorrupt(e)) cs.reportCorrupt(m.handle);
      throw e;
    }
  };

  const append = async (
    m: z.output<typeof AppendRecord.schema>,
  ): Promise<Reply> => {
    const secondaries = await cs.peers.origins(m.secondaries, "secondary");
    if (m.data.length === 0) {
      throw new GfsError("bad_request", "a record append needs a body");
    }
    if (m.data.length > cs.cfg.chunkBytes / 4) {
      throw new GfsError(
        "too_large",
        `a record may be at most ${cs.cfg.chunkBytes / 4} bytes`,
      );
    }
    cs.checkLease(m.handle, m.version);
    const r = await cs.appends.submit(m.handle, {
      version: m.version,
      secondaries,
      data: m.data,
    });
    if ("error" in r) throw r.error;
    return { type: "RecordAppended", message: { offset: r.offset } };
  };

  const serve = (req: Reply, from: Transport<DataMessages>) => {
    switch (req.type) {
      case "ReadChunk":
        need(from, "read");
        return read(req.message);
      case "AppendRecord":
        need(from, "write");
        return append(req.message);
      case "ApplyBytes":
        needPeer(from);
        return apply(req.message);
      default:
        throw new GfsError(
          "bad_request",
          `${req.type} is an answer, not a call`,
        );
    }
  };

  return listenTcp<DataMessages>({
    set: dataMessages,
    hostname: options.host,
    port: options.port,
    secret: s === undefined
      ? undefined
      : [s.tokens.read, s.tokens.write, s.tokens.admin, s.peerSecret],
    maxFrameBytes: DATA_FRAME_MAX_BYTES,
    // Chunk bytes do not repeat field by field: a diff would only cost a compare.
    differential: false,
    // Replies of a few MiB: a small queue would make each one wait in turn.
    maxQueuedBytes: 2 * DATA_FRAME_MAX_BYTES,
    handlers: {
      async onRequest(req, from): Promise<Reply> {
        cs.stats.inflight++;
        cs.stats.dataPortCalls++;
        try {
          return await serve(req, from);
        } catch (e) {
          return { type: "DataRefused", message: refusal(e) };
        } finally {
          cs.stats.inflight--;
        }
      },
      onMessage(_msg, from) {
        // Every exchange is a call: a one-way message is a confused client.
        from.close().catch(() => {});
      },
    },
  });
}

function isCorrupt(e: unknown): boolean {
  return isGfsError(e, "corrupt") ||
    (isStorageError(e) && e.code === "corrupt");
}

/**
 * What a failed call answers: the body the HTTP routes would send (a
 * GfsError keeps its code, a zod error is `bad_request`, a checksum failure
 * `corrupt`); anything else is `internal`, its text logged, never sent.
 */
function refusal(e: unknown): z.output<typeof DataRefused.schema> {
  const known = gfsToEdgeError(e);
  if (known !== undefined) {
    const { code, message } = known.toJSON().error;
    return { code, message: message.slice(0, 4096) };
  }
  console.error(
    `gfs chunkserver: data port call failed: ${
      e instanceof Error ? e.message : String(e)
    }`,
  );
  return { code: "internal", message: "internal error (see the server log)" };
}
