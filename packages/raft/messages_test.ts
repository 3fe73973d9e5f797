import assert from "node:assert/strict";
import { FrameDecoder, isCodecError } from "@strata/codec";
import {
  decodeConfChange,
  decodeRaftMessage,
  encodeConfChange,
  encodeRaftMessage,
  type Message,
  raftMessageSet,
} from "./messages.ts";

const samples: Message[] = [
  {
    type: "app",
    from: 1,
    to: 2,
    term: 3,
    index: 10,
    logTerm: 2,
    commit: 9,
    entries: [
      { term: 3, index: 11, type: "normal", data: new Uint8Array([1, 2, 3]) },
      { term: 3, index: 12, type: "normal", data: new Uint8Array(), echo: 77 },
    ],
  },
  {
    type: "appResp",
    from: 2,
    to: 1,
    term: 3,
    index: 10,
    reject: true,
    rejectHint: 8,
    logTerm: 2,
  },
  { type: "preVote", from: 1, to: 2, term: 4, index: 3, logTerm: 2 },
  {
    type: "heartbeat",
    from: 1,
    to: 3,
    term: 4,
    commit: 5,
    seq: 2,
    sentAt: 99.5,
  },
  {
    type: "heartbeatResp",
    from: 3,
    to: 1,
    term: 4,
    seq: 2,
    sentAt: 99.5,
    now: 1234.25,
    wall: 1_790_000_000_000,
  },
  {
    type: "snap",
    from: 1,
    to: 3,
    term: 4,
    meta: {
      index: 50,
      term: 3,
      confState: { voters: [1, 2, 3], learners: [4] },
    },
    offset: 0,
    total: 4,
    data: new Uint8Array([9, 9, 9, 9]),
  },
  { type: "readIndexResp", from: 1, to: 2, term: 4, ctx: "abc", index: 7 },
];

Deno.test("every raft message kind round-trips through a codec frame", () => {
  for (const m of samples) {
    const bytes = encodeRaftMessage(m);
    const [frame] = new FrameDecoder().push(bytes);
    const back = decodeRaftMessage(frame!);
    assert.deepEqual(
      JSON.parse(
        JSON.stringify(back, (_, v) => v instanceof Uint8Array ? [...v] : v),
      ),
      JSON.parse(
        JSON.stringify(m, (_, v) => v instanceof Uint8Array ? [...v] : v),
      ),
    );
  }
  assert.equal(raftMessageSet.types.length, 15);
});

Deno.test("a frame whose payload violates the schema is rejected with a codec error", () => {
  const bytes = encodeRaftMessage(samples[2]!);
  const [frame] = new FrameDecoder().push(bytes);
  const bad = {
    ...frame!,
    payload: encodeRaftMessage(samples[3]!).subarray(10, -4),
  };
  assert.throws(() => decodeRaftMessage(bad), (e) => isCodecError(e));
});

Deno.test("membership changes encode and decode, and junk decodes to undefined", () => {
  const cc = { type: "addLearner" as const, nodeId: 4 };
  assert.deepEqual(decodeConfChange(encodeConfChange(cc)), cc);
  assert.equal(decodeConfChange(new Uint8Array([1, 2, 3])), undefined);
  assert.equal(
    decodeConfChange(new TextEncoder().encode('["addNode",0]')),
    undefined,
  );
});
