import { join } from "node:path";
import { z } from "zod";
import {
  crc32c,
  defineMessage,
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_TRAILER_BYTES,
  envelopeHeader,
  isCodecError,
} from "@strata/codec";
import { isAtomicTempName, syncDir, writeAll } from "./atomic_file.ts";
import { crc32cCombine } from "./crc32c_combine.ts";
import { DirLock } from "./dir_lock.ts";
import { readAtSync } from "./positioned_read.ts";
import { asStorageError, StorageError } from "./storage_error.ts";

/** Envelope kind of snapshot files. */
export const SNAPSHOT_KIND = "SNAP";
/** Snapshot file format version this code writes and reads. */
export const SNAPSHOT_VERSION = 1;

/** Metadata stored ahead of a snapshot's state bytes (the Raft snapshot header). */
export interface SnapshotMeta {
  /** Index of the last log entry the state includes (0 = none). */
  lastIncludedIndex: number;
  /** Term of that entry. */
  lastIncludedTerm: number;
  /** Cluster configuration as of that entry. */
  configuration: { voters: string[]; learners: string[] };
}

/** zod schema of {@link SnapshotMeta}. */
export const SnapshotMetaSchema: z.ZodType<SnapshotMeta> = z.object({
  lastIncludedIndex: z.number().int().min(0),
  lastIncludedTerm: z.number().int().min(0),
  configuration: z.object({
    voters: z.array(z.string()),
    learners: z.array(z.string()),
  }),
});

const MetaMessage = defineMessage("SnapshotMeta", SnapshotMetaSchema);

/** A snapshot file found unusable and ignored. */
export interface SkippedSnapshot {
  /** File name. */
  file: string;
  /** Why it was ignored. */
  reason: string;
}

/** A verified snapshot. */
export interface LoadedSnapshot {
  /** Its metadata. */
  meta: SnapshotMeta;
  /** File name. */
  file: string;
  /** Size of the state, bytes. */
  stateBytes: number;
  /** Reads the whole state into one buffer (re-verifying the checksum). */
  readState(): Promise<Uint8Array>;
  /**
   * Streams the state in chunks of at most `chunkBytes` (default 1 MiB).
   * The file was verified when loaded; the stream re-checks the checksum
   * and throws `corrupt` after the last chunk if the file changed since.
   */
  stateChunks(chunkBytes?: number): AsyncIterable<Uint8Array>;
}

/** Result of {@link SnapshotStore.loadNewest}. */
export interface LoadResult {
  /** The newest snapshot that verified, or null. */
  snapshot: LoadedSnapshot | null;
  /** Newer files that were damaged or incomplete and were ignored. */
  skipped: SkippedSnapshot[];
}

/** Options of {@link SnapshotStore.open}. */
export interface SnapshotStoreOptions {
  /** Snapshots kept after a save; older ones are deleted (default 2). */
  keep?: number;
}

/** Snapshot file name: index and term, zero-padded so names sort by age. */
export function snapshotName(index: number, term: number): string {
  return `snapshot-${String(index).padStart(20, "0")}-${
    String(term).padStart(20, "0")
  }.snap`;
}

const NAME_RE = /^snapshot-(\d{20})-(\d{20})\.snap$/;

/**
 * Raft snapshots in a directory of their own. Each file is a codec file
 * envelope (`SNAP`, version 1) whose payload is the metadata (u32 length +
 * CBOR) followed by the state bytes, streamed in chunks so large states
 * never need one buffer. The envelope's CRC32C covers header and payload;
 * because the header (with the payload length) is only known at the end, it
 * is written last and its CRC combined with the payload's.
 *
 * Saves are atomic (temporary file, fsync, rename, fsync directory).
 * Loading picks the newest file that verifies and reports the ones it
 * skipped; leftover temporary files from an interrupted save are removed on
 * open and listed in {@link incomplete}.
 */
export class SnapshotStore {
  /** The directory. */
  readonly dir: string;
  /** Temporary files of interrupted saves found (and removed) on open. */
  readonly incomplete: string[];
  readonly #keep: number;
  readonly #lock: DirLock;
  #closed = false;

  private constructor(
    dir: string,
    keep: number,
    lock: DirLock,
    incomplete: string[],
  ) {
    this.dir = dir;
    this.#keep = keep;
    this.#lock = lock;
    this.incomplete = incomplete;
  }

  /**
   * Opens (creating) the store, locking its directory.
   *
   * @throws StorageError `locked`, `bad_argument`, `io`.
   */
  static async open(
    dir: string,
    options: SnapshotStoreOptions = {},
  ): Promise<SnapshotStore> {
    const keep = options.keep ?? 2;
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new StorageError("bad_argument", `keep must be >= 1: ${keep}`);
    }
    const lock = await DirLock.acquire(dir);
    try {
      const incomplete: string[] = [];
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile && isAtomicTempName(e.name)) {
          incomplete.push(e.name);
          await Deno.remove(join(dir, e.name));
        }
      }
      return new SnapshotStore(dir, keep, lock, incomplete.sort());
    } catch (e) {
      lock.release();
      throw asStorageError(e, `cannot open snapshot store ${dir}`);
    }
  }

  /** Snapshot file names, newest first (by index, then term). Not verified. */
  async list(): Promise<string[]> {
    this.#assertOpen();
    const names: string[] = [];
    for await (const e of Deno.readDir(this.dir)) {
      if (e.isFile && NAME_RE.test(e.name)) names.push(e.name);
    }
    return names.sort().reverse();
  }

  /**
   * Saves a snapshot atomically, then deletes all but the newest `keep`.
   *
   * @param state the state bytes, or chunks of them.
   * @returns the file name and its size in bytes.
   * @throws StorageError `bad_argument` for invalid metadata, `closed`, `io`.
   */
  async save(
    meta: SnapshotMeta,
    state: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Promise<{ file: string; bytes: number }> {
    this.#assertOpen();
    const parsed = SnapshotMetaSchema.safeParse(meta);
    if (!parsed.success) {
      throw new StorageError(
        "bad_argument",
        `invalid snapshot metadata: ${parsed.error.message}`,
      );
    }
    const m = parsed.data;
    const name = snapshotName(m.lastIncludedIndex, m.lastIncludedTerm);
    const tmp = join(
      this.dir,
      `.${name}.tmp-${Deno.pid}-${
        crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16)
      }`,
    );
    let file: Deno.FsFile | undefined;
    let total = 0;
    try {
      file = await Deno.open(tmp, { read: true, write: true, createNew: true });
      // Header placeholder; the real one needs the payload length.
      await writeAll(file, new Uint8Array(ENVELOPE_HEADER_BYTES));
      const metaBytes = MetaMessage.encode(m);
      const prefix = new Uint8Array(4 + metaBytes.length);
      new DataView(prefix.buffer).setUint32(0, metaBytes.length, true);
      prefix.set(metaBytes, 4);
      let crc = crc32c(prefix);
      let payload = prefix.length;
      await writeAll(file, prefix);
      const chunks = state instanceof Uint8Array ? [state] : state;
      for await (const chunk of chunks) {
        if (!(chunk instanceof Uint8Array)) {
          throw new StorageError("bad_argument", "state chunks must be bytes");
        }
        crc = crc32c(chunk, crc);
        payload += chunk.length;
        await writeAll(file, chunk);
      }
      const header = envelopeHeader(SNAPSHOT_KIND, SNAPSHOT_VERSION, payload);
      const trailer = new Uint8Array(ENVELOPE_TRAILER_BYTES);
      new DataView(trailer.buffer).setUint32(
        0,
        crc32cCombine(crc32c(header), crc, payload),
        true,
      );
      await writeAll(file, trailer);
      await file.seek(0, Deno.SeekMode.Start);
      await writeAll(file, header);
      await file.sync();
      file.close();
      file = undefined;
      total = ENVELOPE_HEADER_BYTES + payload + ENVELOPE_TRAILER_BYTES;
      await Deno.rename(tmp, join(this.dir, name));
      await syncDir(this.dir);
    } catch (e) {
      file?.close();
      await Deno.remove(tmp).catch(() => {});
      throw asStorageError(e, `cannot save snapshot ${name}`);
    }
    await this.#prune();
    return { file: name, bytes: total };
  }

  /**
   * Finds the newest snapshot whose checksum and metadata verify. Damaged
   * or truncated newer files are skipped and reported, never returned.
   *
   * @throws StorageError `closed`, `io`.
   */
  async loadNewest(): Promise<LoadResult> {
    const skipped: SkippedSnapshot[] = [];
    for (const name of await this.list()) {
      try {
        const snapshot = await this.#verify(name);
        return { snapshot, skipped };
      } catch (e) {
        if (e instanceof StorageError && e.code === "corrupt") {
          skipped.push({ file: name, reason: e.message });
          continue;
        }
        throw asStorageError(e, `cannot read snapshot ${name}`);
      }
    }
    return { snapshot: null, skipped };
  }

  /** Releases the directory. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lock.release();
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new StorageError("closed", "the snapshot store is closed");
    }
  }

  async #prune(): Promise<void> {
    const names = await this.list();
    for (const old of names.slice(this.#keep)) {
      await Deno.remove(join(this.dir, old)).catch(() => {});
    }
    if (names.length > this.#keep) await syncDir(this.dir);
  }

  async #verify(name: string): Promise<LoadedSnapshot> {
    const path = join(this.dir, name);
    const info = await Deno.stat(path);
    const corrupt = (why: string) =>
      new StorageError("corrupt", `snapshot ${name}: ${why}`);
    if (info.size < ENVELOPE_HEADER_BYTES + 4 + ENVELOPE_TRAILER_BYTES) {
      throw corrupt(`only ${info.size} bytes`);
    }
    const file = await Deno.open(path, { read: true });
    let meta: SnapshotMeta;
    let stateOffset: number;
    try {
      const head = readAtSync(file, 0, ENVELOPE_HEADER_BYTES + 4);
      const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
      const kind = new TextDecoder().decode(head.subarray(0, 4));
      if (kind !== SNAPSHOT_KIND) throw corrupt(`bad magic ${kind}`);
      const version = view.getUint16(4, true);
      if (version !== SNAPSHOT_VERSION) {
        throw corrupt(`unsupported version ${version}`);
      }
      const payload = view.getUint32(8, true) +
        view.getUint32(12, true) * 2 ** 32;
      if (
        ENVELOPE_HEADER_BYTES + payload + ENVELOPE_TRAILER_BYTES !== info.size
      ) {
        throw corrupt(
          `header announces ${payload} payload bytes but the file has ${info.size} bytes (incomplete)`,
        );
      }
      const metaLen = view.getUint32(ENVELOPE_HEADER_BYTES, true);
      if (metaLen > payload - 4) throw corrupt("metadata length out of range");
      // Verify the whole file before trusting the metadata.
      await checksumFile(file, info.size, corrupt);
      const metaBytes = readAtSync(file, ENVELOPE_HEADER_BYTES + 4, metaLen);
      try {
        meta = MetaMessage.decode(metaBytes);
      } catch (e) {
        if (isCodecError(e)) throw corrupt(`bad metadata: ${e.message}`);
        throw e;
      }
      stateOffset = ENVELOPE_HEADER_BYTES + 4 + metaLen;
    } finally {
      file.close();
    }
    const stateBytes = info.size - ENVELOPE_TRAILER_BYTES - stateOffset;
    const stateChunks = (chunkBytes = 2 ** 20) =>
      streamState(path, info.size, stateOffset, chunkBytes, corrupt);
    return {
      meta,
      file: name,
      stateBytes,
      stateChunks,
      readState: async () => {
        const out = new Uint8Array(stateBytes);
        let off = 0;
        for await (const c of stateChunks(4 * 2 ** 20)) {
          out.set(c, off);
          off += c.length;
        }
        return out;
      },
    };
  }
}

async function checksumFile(
  file: Deno.FsFile,
  size: number,
  corrupt: (why: string) => StorageError,
): Promise<void> {
  const body = size - ENVELOPE_TRAILER_BYTES;
  const buf = new Uint8Array(Math.min(4 * 2 ** 20, body));
  let crc = 0;
  await file.seek(0, Deno.SeekMode.Start);
  let off = 0;
  while (off < body) {
    const n = await file.read(
      buf.subarray(0, Math.min(buf.length, body - off)),
    );
    if (n === null || n === 0) throw corrupt("file shrank while reading");
    crc = crc32c(buf.subarray(0, n), crc);
    off += n;
  }
  const t = readAtSync(file, body, ENVELOPE_TRAILER_BYTES);
  if (t.length !== 4) throw corrupt("missing checksum");
  if (new DataView(t.buffer, t.byteOffset).getUint32(0, true) !== crc) {
    throw corrupt("checksum mismatch");
  }
}

async function* streamState(
  path: string,
  size: number,
  stateOffset: number,
  chunkBytes: number,
  corrupt: (why: string) => StorageError,
): AsyncIterable<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    const body = size - ENVELOPE_TRAILER_BYTES;
    let crc = crc32c(readAtSync(file, 0, stateOffset));
    let off = stateOffset;
    while (off < body) {
      const n = Math.min(chunkBytes, body - off);
      const chunk = readAtSync(file, off, n);
      if (chunk.length !== n) throw corrupt("file shrank while reading");
      crc = crc32c(chunk, crc);
      off += n;
      yield chunk;
    }
    const t = readAtSync(file, body, ENVELOPE_TRAILER_BYTES);
    if (
      t.length !== 4 ||
      new DataView(t.buffer, t.byteOffset).getUint32(0, true) !== crc
    ) throw corrupt("checksum mismatch while streaming");
  } finally {
    file.close();
  }
}
