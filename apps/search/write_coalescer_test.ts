import assert from "node:assert/strict";
import type { StoredDocument } from "./document.ts";
import { WriteCoalescer } from "./write_coalescer.ts";

function docs(prefix: string, n: number, bodyChars = 1): StoredDocument[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    user_id: 1,
    name: "",
    body: "x".repeat(bodyChars),
    created: i,
  }));
}

/** A send that records each batch and finishes when `release` is called. */
function gatedSend() {
  const sent: Array<{ shard: number; ids: string[] }> = [];
  const gates: Array<(ok: boolean) => void> = [];
  const send = (shard: number, add: StoredDocument[]) => {
    sent.push({ shard, ids: add.map((d) => d.id) });
    return new Promise<string>((resolve, reject) => {
      gates.push((ok) =>
        ok ? resolve(`batch ${sent.length}`) : reject(new Error("down"))
      );
    });
  };
  return { sent, gates, send };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("coalescer: an idle shard's write goes at once; writes waiting behind it go as one, in order", async () => {
  const { sent, gates, send } = gatedSend();
  const c = new WriteCoalescer(2, send);
  const a = c.write(0, docs("a", 2));
  const other = c.write(1, docs("o", 1));
  const b = c.write(0, docs("b", 1));
  const d = c.write(0, docs("d", 2));
  await tick();
  // One write in flight per shard: shard 0's a, shard 1's o.
  assert.deepEqual(sent, [
    { shard: 0, ids: ["a0", "a1"] },
    { shard: 1, ids: ["o0"] },
  ]);
  gates[0]!(true);
  assert.equal(await a, "batch 2");
  await tick();
  // b and d waited behind a: one write, arrival order kept.
  assert.deepEqual(sent[2], { shard: 0, ids: ["b0", "d0", "d1"] });
  gates[2]!(true);
  assert.equal(await b, "batch 3");
  assert.equal(await d, "batch 3");
  gates[1]!(true);
  assert.equal(await other, "batch 3");
  assert.equal(c.batches, 3);
});

Deno.test("coalescer: every request in a failed batch gets the failure; the shard goes on", async () => {
  const { sent, gates, send } = gatedSend();
  const c = new WriteCoalescer(1, send);
  const first = c.write(0, docs("a", 1));
  const x = c.write(0, docs("x", 1));
  const y = c.write(0, docs("y", 1));
  await tick();
  gates[0]!(true);
  await first;
  await tick();
  gates[1]!(false);
  await assert.rejects(x, /down/);
  await assert.rejects(y, /down/);
  const z = c.write(0, docs("z", 1));
  await tick();
  assert.deepEqual(sent.map((s) => s.ids), [["a0"], ["x0", "y0"], ["z0"]]);
  gates[2]!(true);
  await z;
});

Deno.test("coalescer: a batch stops at the document and character limits, but a first write over them still goes", async () => {
  const { sent, gates, send } = gatedSend();
  const c = new WriteCoalescer(1, send, { maxDocs: 3, maxChars: 1000 });
  const ps = [
    c.write(0, docs("a", 1)),
    c.write(0, docs("b", 2)),
    c.write(0, docs("c", 2)), // 2 + 2 > 3 docs: next batch
    c.write(0, docs("d", 1, 999)), // 2 + 999 chars > 1000: next batch
    c.write(0, docs("e", 5)), // over maxDocs alone: goes alone
  ];
  for (let i = 0; i < 5; i++) {
    await tick();
    gates[i]!(true);
  }
  await Promise.all(ps);
  assert.deepEqual(sent.map((s) => s.ids.length), [1, 2, 2, 1, 5]);
});

Deno.test("coalescer: inFlight 2 sends two writes to a shard at once", async () => {
  const { sent, gates, send } = gatedSend();
  const c = new WriteCoalescer(1, send, { inFlight: 2 });
  const ps = [
    c.write(0, docs("a", 1)),
    c.write(0, docs("b", 1)),
    c.write(0, docs("c", 1)),
    c.write(0, docs("d", 1)),
  ];
  await tick();
  assert.equal(sent.length, 2);
  gates[1]!(true);
  await tick();
  assert.deepEqual(sent[2]!.ids, ["c0", "d0"]);
  gates[0]!(true);
  gates[2]!(true);
  await Promise.all(ps);
});
