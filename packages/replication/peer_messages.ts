/**
 * The message set replicas speak over TCP: raft's messages, plus the two
 * that the replicas add — `PeerSite` (a member announcing its site and
 * raft address on every connection it dials) and transport's `RelayBatch` (one
 * packed blob of appends for a remote site's followers, sent to that
 * site's relay member). Every member of a cluster must run the same set:
 * the handshake compares its fingerprint.
 */
import { defineMessage, defineMessageSet } from "@strata/codec";
import { raftMessageTypes } from "@strata/raft";
import { RelayBatch } from "@strata/transport";
import { z } from "zod";

/**
 * A member announcing itself, first on each connection it dials: its site
 * label (multi-site relaying) and its raft address (so a replica that was
 * down while this member was added can still answer it).
 */
export const PeerSite = defineMessage(
  "replication.peerSite",
  z.object({
    id: z.number().int().positive(),
    site: z.string().min(1).max(64).optional(),
    peer: z.string().min(3).max(300).optional(),
  }),
);

/** Raft's message kinds, then PeerSite and RelayBatch. */
export const peerMessageTypes = [
  ...raftMessageTypes,
  PeerSite,
  RelayBatch,
] as const;

/** The set every replica's peer transport uses. */
export const peerMessageSet = defineMessageSet(peerMessageTypes);
