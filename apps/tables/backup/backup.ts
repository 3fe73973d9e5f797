/**
 * Backup of a table as of a timestamp, and restore into a new table,
 * through the tables client.
 *
 * Backup: GC is held on every tablet for a consistent read as of `at`
 * (refused as `compacted` if a tablet's GC already passed it), then each
 * tablet's rows are read with a consistent scan as of `at` from whichever
 * server holds it (writes go on meanwhile; entries written after `at` are
 * ignored), written as one file per tablet, and a manifest with each
 * file's CRC-32C is written last: a backup without a manifest is
 * incomplete.
 *
 * Restore: checks the manifest and every file's CRC, creates the new table
 * with the same families and tablet boundaries, and writes each row's
 * cells with their timestamps (one row mutation per row).
 */
import { Buffer } from "node:buffer";
import { z } from "zod";
import { crc32c } from "@strata/codec";
import {
  type ClientMutation,
  type FamilySpec,
  type TablesClient,
  TablesClientError,
} from "../client/tables_client.ts";
import type { BackupStore } from "./backup_store.ts";

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A backup's manifest (`manifest.json`). */
export const manifestSchema = z.strictObject({
  format: z.literal(1),
  table: z.string(),
  /** The timestamp the backup is consistent at, ms. */
  at: z.number().int().min(0),
  families: z.array(z.strictObject({
    name: z.string(),
    maxVersions: z.number().int().optional(),
    ttlMs: z.number().int().optional(),
  })),
  tablets: z.array(z.strictObject({
    file: z.string(),
    /** base64; "" = the start of the table. */
    start: z.string(),
    /** base64; null = the end of the table. */
    end: z.string().nullable(),
    rows: z.number().int(),
    cells: z.number().int(),
    bytes: z.number().int(),
    crc32c: z.number().int(),
  })),
});
/** A backup's manifest. */
export type Manifest = z.infer<typeof manifestSchema>;

/** One line of a tablet file: a row and its cells `[family, qualifier, timestamp, value]`. */
const lineSchema = z.strictObject({
  k: z.string(),
  c: z.array(z.tuple([z.string(), z.string(), z.number().int(), z.string()])),
});

/** How long each tablet's GC hold lasts; renewed while the backup runs. */
const HOLD_MS = 120_000;

/** Where a backup's manifest is. */
export const manifestPath = (dir: string): string =>
  `${dir.replace(/\/$/, "")}/manifest.json`;

/** How far ahead of now a backup's default time is: the holds are in place before it. */
export const BACKUP_LEAD_MS = 1000;

/**
 * Writes a consistent copy of `table` as of `at` to `dir` in `store`.
 * Without `at`, `at` is {@link BACKUP_LEAD_MS} from now, so every
 * tablet's GC hold is placed before it. A time in the past works when no
 * tablet has, since then, compacted or replaced a deletion marker
 * unheld, moved or split.
 * @throws TablesClientError `compacted` otherwise: run it again.
 */
export async function backupTable(
  client: TablesClient,
  store: BackupStore,
  table: string,
  dir: string,
  at = Date.now() + BACKUP_LEAD_MS,
): Promise<Manifest> {
  const schema = (await client.listTables()).find((t) => t.name === table);
  if (!schema) throw new Error(`no table ${table}`);
  if (await store.exists(manifestPath(dir))) {
    throw new Error(`${dir} already holds a backup (${store.where})`);
  }
  const tablets = await client.tablets(table);
  // A key inside each tablet, to find its server (the empty key is no row).
  const inside = (start: Uint8Array) =>
    start.length > 0 ? start : new Uint8Array([0]);
  const holdAll = () =>
    Promise.all(
      tablets.map((t) =>
        client.holdSnapshot(table, inside(t.start), at, HOLD_MS)
      ),
    );
  await holdAll();
  let renewing = true;
  let renewal: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    if (renewing) renewal = holdAll().catch(() => {}); // the scans say if it failed
  }, HOLD_MS / 3);
  try {
    const files: Manifest["tablets"] = [];
    for (const [i, t] of tablets.entries()) {
      const lines: string[] = [];
      let cells = 0;
      for await (
        const r of client.scan(table, {
          start: t.start,
          ...(t.end ? { end: t.end } : {}),
          asOf: at,
          consistent: true,
        })
      ) {
        cells += r.cells.length;
        lines.push(JSON.stringify({
          k: b64(r.key),
          c: r.cells.map((
            c,
          ) => [c.family, b64(c.qualifier), c.timestamp, b64(c.value)]),
        }));
      }
      const bytes = enc.encode(lines.map((l) => l + "\n").join(""));
      const file = `tablet-${String(i).padStart(5, "0")}.ndjson`;
      await store.write(`${dir}/${file}`, bytes);
      files.push({
        file,
        start: b64(t.start),
        end: t.end === null ? null : b64(t.end),
        rows: lines.length,
        cells,
        bytes: bytes.length,
        crc32c: crc32c(bytes),
      });
    }
    const manifest: Manifest = {
      format: 1,
      table,
      at,
      families: schema.families.map((f) => ({
        name: f.name,
        ...(f.maxVersions !== undefined ? { maxVersions: f.maxVersions } : {}),
        ...(f.ttlMs !== undefined ? { ttlMs: f.ttlMs } : {}),
      })),
      tablets: files,
    };
    await store.write(
      manifestPath(dir),
      enc.encode(JSON.stringify(manifest, null, 1) + "\n"),
    );
    return manifest;
  } finally {
    renewing = false;
    clearInterval(timer);
    await renewal;
  }
}

/**
 * Puts with explicit timestamps write the same cells again: re-sending
 * one whose outcome is unknown is harmless.
 */
async function putAgainIfUnknown(put: () => Promise<void>): Promise<void> {
  for (let attempt = 1;; attempt++) {
    try {
      return await put();
    } catch (e) {
      if (
        !(e instanceof TablesClientError) || e.code !== "unknown_outcome" ||
        attempt >= 5
      ) throw e;
    }
  }
}

/** Reads and checks a backup's manifest and files. @throws on a missing file or a CRC mismatch. */
export async function readBackup(
  store: BackupStore,
  dir: string,
): Promise<{ manifest: Manifest; files: Uint8Array[] }> {
  const manifest = manifestSchema.parse(
    JSON.parse(dec.decode(await store.read(manifestPath(dir)))),
  );
  const files: Uint8Array[] = [];
  for (const t of manifest.tablets) {
    const bytes = await store.read(`${dir}/${t.file}`);
    if (bytes.length !== t.bytes || crc32c(bytes) !== t.crc32c) {
      throw new Error(
        `${dir}/${t.file}: ${bytes.length} bytes with CRC-32C ${
          crc32c(bytes)
        }, the manifest says ${t.bytes} and ${t.crc32c}: the backup is damaged`,
      );
    }
    files.push(bytes);
  }
  return { manifest, files };
}

/**
 * Creates `newTable` from the backup in `dir`: same families and tablet
 * boundaries, every cell with its timestamp. @returns rows and cells written.
 */
export async function restoreTable(
  client: TablesClient,
  store: BackupStore,
  dir: string,
  newTable: string,
  concurrency = 16,
): Promise<{ rows: number; cells: number }> {
  const { manifest, files } = await readBackup(store, dir);
  await client.createTable(
    newTable,
    manifest.families as FamilySpec[],
    manifest.tablets.slice(1).map((t) => unb64(t.start)),
  );
  let rows = 0;
  let cells = 0;
  for (const bytes of files) {
    const lines = dec.decode(bytes).split("\n").filter((l) => l.length > 0);
    for (let i = 0; i < lines.length; i += concurrency) {
      await Promise.all(
        lines.slice(i, i + concurrency).map((l) => {
          const r = lineSchema.parse(JSON.parse(l));
          const mutations: ClientMutation[] = r.c.map(([f, q, ts, v]) => ({
            op: "put",
            family: f,
            qualifier: unb64(q),
            value: unb64(v),
            timestamp: ts,
          }));
          rows++;
          cells += mutations.length;
          return putAgainIfUnknown(() =>
            client.mutateRow(newTable, unb64(r.k), mutations)
          );
        }),
      );
    }
  }
  return { rows, cells };
}
