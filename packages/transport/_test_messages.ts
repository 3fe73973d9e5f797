// Message kinds shared by this package's tests and its child-process peer.
import { defineMessage, defineMessageSet } from "@strata/codec";
import { z } from "zod";

export const Echo = defineMessage(
  "Echo",
  z.object({ seq: z.number().int(), text: z.string() }),
);
export const Note = defineMessage(
  "Note",
  z.object({ seq: z.number().int(), from: z.string(), term: z.number() }),
);
export const Slow = defineMessage(
  "Slow",
  z.object({ ms: z.number().int(), blob: z.instanceof(Uint8Array) }),
);
export const messages = defineMessageSet([Echo, Note, Slow]);
export type Messages = readonly [typeof Echo, typeof Note, typeof Slow];

/** A set with one more kind: a different fingerprint. */
export const otherMessages = defineMessageSet([
  Echo,
  Note,
  Slow,
  defineMessage("Extra", z.object({ x: z.number() })),
]);
