import { decodeCbor } from "@strata/codec";
import { Encoder } from "cbor-x";
import { z } from "zod";
import { GfsError } from "../shared/gfs_error.ts";
import { parseTrashPath, trashPath } from "../shared/gfs_path.ts";
import { type FileRecord, Namespace } from "./namespace.ts";

/** A chunk as the master records it (durable). Locations are not here. */
export interface ChunkRecord {
  /** Globally unique, never reused handle. */
  handle: number;
  /** Id of the file it belongs to. */
  fileId: number;
  /** Position in the file. */
  index: number;
  /** Current version; replicas with an older one are stale. */
  version: number;
  /** Final length of a sealed chunk (completed upload), else null. */
  length: number | null;
  /**
   * Ids of the servers that hold the current version as the master made
   * it (the replicas of its lease, plus clones admitted while no lease
   * could be held): a replica reporting this version from any other
   * server missed mutations and is stale. Null when not tracked (upload
   * chunks, whose sealed length catches a short copy; state from before
   * the field): then every replica at the version counts.
   */
  replicas?: string[] | null;
}

const Path = z.string().min(2).max(2048);
const Ms = z.number().int().min(0);

/**
 * zod schema of the master's operations: the only way its durable state
 * changes. Each carries everything apply needs (time included), so
 * replaying the log (or running it on Raft) gives the same state.
 */
export const MasterOpSchema = z.discriminatedUnion("t", [
  z.object({
    t: z.literal("create"),
    path: Path,
    mode: z.enum(["upload", "append"]),
    replication: z.number().int().min(1).max(16),
    now: Ms,
    /** Also allocate chunk 0 (an upload known not to be empty). */
    firstChunk: z.boolean().optional(),
  }),
  z.object({
    t: z.literal("allocate"),
    path: Path,
    fileId: z.number().int().min(1),
    index: z.number().int().min(0),
    now: Ms,
  }),
  z.object({
    t: z.literal("bumpVersion"),
    handle: z.number().int().min(1),
    version: z.number().int().min(1),
    /** The servers that took the version (absent: adopted, not tracked). */
    replicas: z.array(z.string().min(1)).optional(),
  }),
  z.object({
    /** Sets (or, with `add`, extends) the replica set of a chunk's version. */
    t: z.literal("replicas"),
    handle: z.number().int().min(1),
    version: z.number().int().min(1),
    servers: z.array(z.string().min(1)),
    add: z.boolean(),
  }),
  z.object({
    t: z.literal("complete"),
    path: Path,
    fileId: z.number().int().min(1),
    lengths: z.array(z.number().int().min(0)),
    now: Ms,
  }),
  z.object({
    t: z.literal("abandon"),
    path: Path,
    fileId: z.number().int().min(1),
  }),
  z.object({ t: z.literal("delete"), path: Path, now: Ms }),
  z.object({ t: z.literal("undelete"), trashPath: Path, now: Ms }),
  z.object({ t: z.literal("purge"), path: Path }),
]);

/** One operation of the master's log. */
export type MasterOp = z.infer<typeof MasterOpSchema>;

/** What applying an operation produced. */
export type ApplyResult =
  | { t: "create"; fileId: number; handle?: number }
  | { t: "allocate"; handle: number; version: number; replaced: number | null }
  | { t: "bumpVersion"; version: number }
  | { t: "replicas"; replicas: string[] | null }
  | { t: "complete" }
  | { t: "abandon"; chunks: number[] }
  | { t: "delete"; trashPath: string }
  | { t: "undelete"; path: string }
  | { t: "purge"; chunks: number[] };

const CHECKPOINT_VERSION = 1;
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });

const FileSchema = z.object({
  id: z.number().int(),
  state: z.enum(["pending", "complete"]),
  mode: z.enum(["upload", "append"]),
  replication: z.number().int(),
  chunks: z.array(z.number().int()),
  length: z.number().int(),
  createdAt: z.number(),
  mtime: z.number(),
});
const CheckpointSchema = z.object({
  v: z.literal(CHECKPOINT_VERSION),
  nextFileId: z.number().int(),
  nextHandle: z.number().int(),
  files: z.array(z.tuple([z.string(), FileSchema])),
  chunks: z.array(z.object({
    handle: z.number().int(),
    fileId: z.number().int(),
    index: z.number().int(),
    version: z.number().int(),
    length: z.number().int().nullable(),
    replicas: z.array(z.string()).nullable().optional(),
  })),
});

/**
 * The master's durable state as a deterministic state machine: the
 * namespace, file → chunk handles, chunk versions, and the id counters.
 * {@link apply} is the only mutator and depends on nothing but the state and
 * the operation, so a replica that applies the same log ends in the same
 * state (ready to sit under Raft). Invalid operations throw a GfsError and
 * change nothing — deterministically, so replay agrees with the original.
 */
export class MasterState {
  /** Files by full path (trash included). */
  readonly namespace = new Namespace();
  /** Chunks by handle. */
  readonly chunks = new Map<number, ChunkRecord>();
  readonly #pathById = new Map<number, string>();
  #nextFileId = 1;
  #nextHandle = 1;

  /** The next file id apply will hand out. */
  get nextFileId(): number {
    return this.#nextFileId;
  }

  /** The next chunk handle apply will hand out. */
  get nextHandle(): number {
    return this.#nextHandle;
  }

  /** Current path of a file id, or undefined. */
  pathOf(fileId: number): string | undefined {
    return this.#pathById.get(fileId);
  }

  /** The file at `path` that is visible to readers (complete, not trashed). */
  visibleFile(path: string): FileRecord | undefined {
    const f = this.namespace.get(path);
    if (f === undefined || f.state !== "complete") return undefined;
    if (parseTrashPath(path) !== null) return undefined;
    return f;
  }

  /**
   * Applies one operation.
   * @throws GfsError (`not_found`, `conflict`, `bad_request`) when the
   *   operation is invalid in this state; the state is then unchanged.
   */
  apply(op: MasterOp): ApplyResult {
    switch (op.t) {
      case "create": {
        this.namespace.checkCreate(op.path);
        const id = this.#nextFileId++;
        this.namespace.add(op.path, {
          id,
          state: op.mode === "append" ? "complete" : "pending",
          mode: op.mode,
          replication: op.replication,
          chunks: [],
          length: 0,
          createdAt: op.now,
          mtime: op.now,
        });
        this.#pathById.set(id, op.path);
        if (op.firstChunk !== true) return { t: "create", fileId: id };
        // One log entry for both: a small upload waits for one fsync, not two.
        const a = this.apply({
          t: "allocate",
          path: op.path,
          fileId: id,
          index: 0,
          now: op.now,
        });
        return {
          t: "create",
          fileId: id,
          handle: a.t === "allocate" ? a.handle : undefined,
        };
      }
      case "allocate": {
        const f = this.#fileAt(op.path, op.fileId);
        if (f.mode === "upload" && f.state !== "pending") {
          throw new GfsError("conflict", `${op.path} is already complete`);
        }
        if (op.index > f.chunks.length) {
          throw new GfsError(
            "bad_request",
            `chunk index ${op.index} leaves a gap after ${f.chunks.length} chunks`,
          );
        }
        if (f.mode === "append" && op.index !== f.chunks.length) {
          throw new GfsError("conflict", `chunk ${op.index} already exists`);
        }
        const handle = this.#nextHandle++;
        const replaced = f.chunks[op.index] ?? null;
        if (replaced !== null) this.chunks.delete(replaced);
        f.chunks[op.index] = handle;
        f.mtime = op.now;
        this.chunks.set(handle, {
          handle,
          fileId: f.id,
          index: op.index,
          version: 1,
          length: null,
          replicas: null,
        });
        return { t: "allocate", handle, version: 1, replaced };
      }
      case "bumpVersion": {
        const c = this.chunks.get(op.handle);
        if (c === undefined) {
          throw new GfsError("not_found", `chunk ${op.handle} not found`);
        }
        if (op.version <= c.version) {
          throw new GfsError(
            "stale",
            `chunk ${op.handle} is at version ${c.version} ≥ ${op.version}`,
          );
        }
        c.version = op.version;
        c.replicas = op.replicas === undefined ? null : [...op.replicas];
        return { t: "bumpVersion", version: c.version };
      }
      case "replicas": {
        const c = this.chunks.get(op.handle);
        if (c === undefined) {
          throw new GfsError("not_found", `chunk ${op.handle} not found`);
        }
        if (op.version !== c.version) {
          throw new GfsError(
            "stale",
            `chunk ${op.handle} is at version ${c.version}, not ${op.version}`,
          );
        }
        const cur = c.replicas ?? null;
        if (!op.add) c.replicas = [...op.servers];
        else if (cur !== null) {
          c.replicas = [...new Set([...cur, ...op.servers])];
        }
        return { t: "replicas", replicas: c.replicas ?? null };
      }
      case "complete": {
        const f = this.#fileAt(op.path, op.fileId);
        if (f.state !== "pending") {
          throw new GfsError("conflict", `${op.path} is not pending`);
        }
        if (op.lengths.length !== f.chunks.length) {
          throw new GfsError(
            "bad_request",
            `${op.lengths.length} chunk lengths for ${f.chunks.length} chunks`,
          );
        }
        let total = 0;
        f.chunks.forEach((h, i) => {
          const c = this.chunks.get(h)!;
          c.length = op.lengths[i]!;
          total += c.length;
        });
        f.state = "complete";
        f.length = total;
        f.mtime = op.now;
        return { t: "complete" };
      }
      case "abandon": {
        const f = this.#fileAt(op.path, op.fileId);
        if (f.state !== "pending") {
          throw new GfsError("conflict", `${op.path} is not pending`);
        }
        return { t: "abandon", chunks: this.#drop(op.path, f) };
      }
      case "delete": {
        const f = this.namespace.get(op.path);
        if (f === undefined || f.state !== "complete") {
          throw new GfsError("not_found", `${op.path} not found`);
        }
        if (parseTrashPath(op.path) !== null) {
          throw new GfsError("bad_request", `${op.path} is already deleted`);
        }
        const to = trashPath(op.path, op.now);
        this.namespace.rename(op.path, to);
        this.#pathById.set(f.id, to);
        return { t: "delete", trashPath: to };
      }
      case "undelete": {
        const parsed = parseTrashPath(op.trashPath);
        const f = this.namespace.get(op.trashPath);
        if (parsed === null || f === undefined) {
          throw new GfsError("not_found", `${op.trashPath} not in the trash`);
        }
        this.namespace.rename(op.trashPath, parsed.original);
        this.#pathById.set(f.id, parsed.original);
        f.mtime = op.now;
        return { t: "undelete", path: parsed.original };
      }
      case "purge": {
        const f = this.namespace.get(op.path);
        if (f === undefined) {
          throw new GfsError("not_found", `${op.path} not found`);
        }
        return { t: "purge", chunks: this.#drop(op.path, f) };
      }
    }
  }

  /** Encodes the whole state (a checkpoint). */
  encode(): Uint8Array {
    const files = [...this.namespace.entries()].map((
      [p, f],
    ) => [p, f] as const);
    return cbor.encode({
      v: CHECKPOINT_VERSION,
      nextFileId: this.#nextFileId,
      nextHandle: this.#nextHandle,
      files,
      chunks: [...this.chunks.values()],
    });
  }

  /**
   * Rebuilds a state from {@link encode}'s bytes.
   * @throws GfsError `corrupt` when the bytes are not a valid checkpoint.
   */
  static decode(bytes: Uint8Array): MasterState {
    let parsed: z.infer<typeof CheckpointSchema>;
    try {
      parsed = CheckpointSchema.parse(decodeCbor(bytes, false));
    } catch (e) {
      throw new GfsError("corrupt", `bad master checkpoint: ${String(e)}`);
    }
    const s = new MasterState();
    s.#nextFileId = parsed.nextFileId;
    s.#nextHandle = parsed.nextHandle;
    for (const [path, f] of parsed.files) {
      s.namespace.add(path, { ...f, chunks: [...f.chunks] });
      s.#pathById.set(f.id, path);
    }
    for (const c of parsed.chunks) s.chunks.set(c.handle, { ...c });
    return s;
  }

  #fileAt(path: string, fileId: number): FileRecord {
    const f = this.namespace.get(path);
    if (f === undefined || f.id !== fileId) {
      throw new GfsError("not_found", `${path} (file ${fileId}) not found`);
    }
    return f;
  }

  #drop(path: string, f: FileRecord): number[] {
    this.namespace.remove(path);
    this.#pathById.delete(f.id);
    for (const h of f.chunks) this.chunks.delete(h);
    return [...f.chunks];
  }
}

/** Encodes an operation for the log. */
export function encodeOp(op: MasterOp): Uint8Array {
  return cbor.encode(op);
}

/**
 * Decodes and validates a logged operation.
 * @throws GfsError `corrupt` when the bytes are not a valid operation.
 */
export function decodeOp(bytes: Uint8Array): MasterOp {
  const r = MasterOpSchema.safeParse(decodeCbor(bytes, false));
  if (!r.success) {
    throw new GfsError("corrupt", `bad master log record: ${r.error.message}`);
  }
  return r.data;
}
