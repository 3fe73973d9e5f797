import assert from "node:assert/strict";
import fc from "fast-check";
import type { Entry } from "./messages.ts";
import { isRaftError } from "./raft_error.ts";
import { MemoryStorage } from "./storage.ts";

const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array([index & 255]),
});

Deno.test("memory storage appends, truncates a conflicting suffix and answers terms", () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2)]);
  s.append([ent(3, 3), ent(4, 3)]);
  assert.equal(s.lastIndex(), 4);
  assert.equal(s.term(3), 3);
  assert.deepEqual(s.entries(1, 5, Infinity).map((e) => e.term), [1, 1, 3, 3]);
});

Deno.test("entries stop at the byte limit but always return at least one", () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
  assert.equal(s.entries(1, 4, 0).length, 1);
  assert.equal(s.entries(1, 4, 2).length, 2);
});

Deno.test("compaction keeps the snapshot's term and refuses compacted reads", () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
  s.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array([9]));
  s.compact(3);
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.term(3), 2);
  assert.throws(() => s.term(2), (e) => isRaftError(e, "compacted"));
  assert.throws(
    () => s.entries(3, 5, Infinity),
    (e) => isRaftError(e, "compacted"),
  );
  assert.throws(() => s.compact(4), (e) => isRaftError(e, "invariant"));
});

Deno.test("an older snapshot is refused", () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1)]);
  s.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array());
  assert.throws(
    () => s.createSnapshot(1, { voters: [1], learners: [] }, new Uint8Array()),
    (e) => isRaftError(e, "snapshot_out_of_date"),
  );
});

Deno.test("memory storage behaves like an array under appends and compactions (property)", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant("append" as const),
            back: fc.nat(5),
            n: fc.integer({ min: 1, max: 5 }),
            term: fc.integer({ min: 1, max: 9 }),
          }),
          fc.record({ kind: fc.constant("compact" as const), back: fc.nat(8) }),
        ),
        { maxLength: 40 },
      ),
      (ops) => {
        const s = new MemoryStorage();
        const model: Entry[] = [];
        let compacted = 0;
        for (const op of ops) {
          if (op.kind === "append") {
            const from = Math.max(compacted + 1, model.length + 1 - op.back);
            const ents: Entry[] = [];
            for (let i = 0; i < op.n; i++) ents.push(ent(from + i, op.term));
            s.append(ents);
            model.length = from - 1;
            model.push(...ents);
          } else {
            const at = model.length - op.back;
            if (at <= compacted) continue;
            s.createSnapshot(
              at,
              { voters: [1], learners: [] },
              new Uint8Array(),
            );
            s.compact(at);
            compacted = at;
          }
        }
        assert.equal(s.lastIndex(), Math.max(model.length, compacted));
        assert.equal(s.firstIndex(), compacted + 1);
        for (let i = compacted + 1; i <= model.length; i++) {
          assert.equal(s.term(i), model[i - 1]!.term);
        }
      },
    ),
    { numRuns: 200 },
  );
});
