import type { Hono } from "hono";
import { z } from "zod";
import { hostPortFlag, readJson } from "@strata/edge";
import { need } from "../shared/access.ts";
import type { MasterService } from "./master_service.ts";

/** The body of `POST /v1/master/members`. */
export const MemberChangeSchema = z.discriminatedUnion("action", [
  z.object({
    action: z.literal("add"),
    id: z.number().int().min(1).max(2 ** 31),
    peer: hostPortFlag,
    http: hostPortFlag,
  }).strict(),
  z.object({
    action: z.enum(["promote", "remove"]),
    id: z.number().int().min(1).max(2 ** 31),
  }).strict(),
]);

/**
 * Membership of a replicated master group (admin token; the leader
 * answers, others redirect): `add` a master as a learner with its raft and
 * HTTP addresses (it catches up without voting; start it with `--join`),
 * `promote` it to a voter, `remove` a master. One change at a time, through
 * the Raft log; answers the members once the change is applied.
 */
export function memberRoutes(app: Hono, m: MasterService): void {
  app.post("/v1/master/members", need.admin, async (c) => {
    const change = await readJson(c, MemberChangeSchema);
    return c.json({ members: await m.store.changeMember(change) });
  });
}
