/**
 * `deno task tables:cli backup|restore …`: the backup commands of the
 * tables CLI. Files go to a GFS cell (`--gfs URLS`, token from
 * `--gfs-token-file` or STRATA_GFS_TOKEN) or, without `--gfs`, under a
 * local directory (`--storage-root`, default ./data/tables/tablets: the
 * storage root of `deno task tables --no-gfs`).
 */
import { GfsClient } from "@strata/gfs";
import { readSecretFile } from "@strata/edge";
import type { TablesClient } from "../client/tables_client.ts";
import { backupTable, restoreTable } from "./backup.ts";
import {
  type BackupStore,
  GfsBackupStore,
  LocalBackupStore,
} from "./backup_store.ts";

/** The CLI's flags this uses. */
export interface BackupCliFlags {
  at?: number;
  to?: string;
  table?: string;
  gfs?: string;
  "gfs-token-file"?: string;
  "storage-root"?: string;
}

/** Usage lines of the backup commands. */
export const BACKUP_HELP =
  `  backup <table> --to /backups/NAME [--at MS]  a consistent copy as of MS (default: in 1 s), per tablet, with a manifest
  restore /backups/NAME --table NEW            a new table from a backup (CRCs checked)
    with --gfs URLS [--gfs-token-file F] (GFS) or --storage-root DIR (default ./data/tables/tablets)`;

async function store(f: BackupCliFlags): Promise<BackupStore> {
  if (!f.gfs) {
    return new LocalBackupStore(f["storage-root"] ?? "./data/tables/tablets");
  }
  const token = f["gfs-token-file"]
    ? await readSecretFile(f["gfs-token-file"])
    : Deno.env.get("STRATA_GFS_TOKEN");
  return new GfsBackupStore(
    new GfsClient(f.gfs.split(","), token ? { token } : {}),
  );
}

/** Runs `backup` or `restore`. */
export async function backupCommand(
  client: TablesClient,
  cmd: "backup" | "restore",
  args: string[],
  f: BackupCliFlags,
): Promise<void> {
  const s = await store(f);
  if (cmd === "backup") {
    if (!args[0] || !f.to) {
      throw new Error("backup <table> --to /backups/NAME [--at MS]");
    }
    const started = performance.now();
    const m = await backupTable(client, s, args[0], f.to, f.at);
    console.log(JSON.stringify({
      backup: m.table,
      at: m.at,
      to: f.to,
      store: s.where,
      tablets: m.tablets.length,
      rows: m.tablets.reduce((n, t) => n + t.rows, 0),
      cells: m.tablets.reduce((n, t) => n + t.cells, 0),
      ms: Math.round(performance.now() - started),
    }));
    return;
  }
  if (!args[0] || !f.table) {
    throw new Error("restore /backups/NAME --table NEW");
  }
  const started = performance.now();
  const r = await restoreTable(client, s, args[0], f.table);
  console.log(JSON.stringify({
    restored: f.table,
    from: args[0],
    ...r,
    ms: Math.round(performance.now() - started),
  }));
}
