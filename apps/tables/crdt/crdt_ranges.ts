/**
 * `crdt_ranges.ts`: the master's side of CRDT ranges: declarations in kv
 * (`tables/crdt/<range>`), created and deleted by the active master's
 * fenced transactions, read by any master with the replicas' URLs.
 */
import type { KvClient } from "@strata/kv";
import { EdgeError } from "@strata/edge";
import { SERVER_PREFIX, serverRecordSchema } from "../shared/kv_layout.ts";
import { placeReplicas } from "./crdt_placement.ts";
import {
  CRDT_PREFIX,
  crdtRangeKey,
  type CrdtRangeRecord,
  crdtRangeRecordSchema,
} from "./crdt_wire.ts";

/** A fenced kv write of the active master (see `MasterService.fencedWrite`). */
export type FencedWrite = (
  ops: Array<
    { op: "put"; key: string; value: string } | { op: "delete"; key: string }
  >,
  extraCompare?: Array<Record<string, unknown>>,
) => Promise<boolean>;

/** A range with where its replicas are (url null: the server is not registered now). */
export interface CrdtRangeView {
  name: string;
  replicas: { id: string; url: string | null }[];
}

const decoder = new TextDecoder();

async function read(
  kv: KvClient,
): Promise<{ ranges: CrdtRangeRecord[]; urls: Map<string, string> }> {
  const ranges: CrdtRangeRecord[] = [];
  for await (const e of kv.scan(CRDT_PREFIX)) {
    const r = crdtRangeRecordSchema.safeParse(
      JSON.parse(decoder.decode(e.value)),
    );
    if (r.success) ranges.push(r.data);
  }
  const urls = new Map<string, string>();
  for await (const e of kv.scan(SERVER_PREFIX)) {
    const r = serverRecordSchema.safeParse(JSON.parse(decoder.decode(e.value)));
    if (r.success) urls.set(r.data.id, r.data.url);
  }
  return { ranges, urls };
}

const view = (r: CrdtRangeRecord, urls: Map<string, string>) => ({
  name: r.name,
  replicas: r.replicas.map((id) => ({ id, url: urls.get(id) ?? null })),
});

/** Every range, with its replicas' URLs. */
export async function listCrdtRanges(kv: KvClient): Promise<CrdtRangeView[]> {
  const { ranges, urls } = await read(kv);
  return ranges.map((r) => view(r, urls));
}

/** One range. @throws EdgeError `not_found`. */
export async function getCrdtRange(
  kv: KvClient,
  name: string,
): Promise<CrdtRangeView> {
  const { ranges, urls } = await read(kv);
  const r = ranges.find((x) => x.name === name);
  if (!r) throw new EdgeError("not_found", `no CRDT range ${name}`);
  return view(r, urls);
}

/**
 * Declares a range held by `n` live servers (see {@link placeReplicas}).
 * @throws EdgeError `conflict` (exists), `unavailable` (too few servers).
 */
export async function createCrdtRange(
  kv: KvClient,
  write: FencedWrite,
  name: string,
  n: number,
): Promise<CrdtRangeView> {
  const { ranges, urls } = await read(kv);
  const replicas = placeReplicas([...urls.keys()], ranges, n);
  if (!replicas) {
    throw new EdgeError(
      "unavailable",
      `a CRDT range of ${n} replicas needs ${n} live tablet servers; ${urls.size} are live`,
    );
  }
  const record: CrdtRangeRecord = {
    name,
    replicas,
    incarnation: crypto.randomUUID(),
  };
  const ok = await write(
    [{ op: "put", key: crdtRangeKey(name), value: JSON.stringify(record) }],
    [{ key: crdtRangeKey(name), target: "exists", op: "==", value: 0 }],
  );
  if (!ok) throw new EdgeError("conflict", `CRDT range ${name} exists`);
  return view(record, urls);
}

/** Deletes a range (its replicas drop their copies). @throws EdgeError `not_found`. */
export async function deleteCrdtRange(
  write: FencedWrite,
  name: string,
): Promise<void> {
  const ok = await write(
    [{ op: "delete", key: crdtRangeKey(name) }],
    [{ key: crdtRangeKey(name), target: "exists", op: "==", value: 1 }],
  );
  if (!ok) throw new EdgeError("not_found", `no CRDT range ${name}`);
}
