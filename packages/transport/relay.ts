import { defineMessage } from "@strata/codec";
import { z } from "zod";
import { pack, packedCount, unpack } from "./multi_packet.ts";
import { TransportError } from "./transport_error.ts";

/**
 * The message a leader sends to a relay: packets for several receivers
 * packed into one blob (see multi_packet.ts); `receivers[i]` gets packet
 * `i`. Add it to the message set of nodes that relay (packages/replication's
 * peer message set has it).
 */
export const RelayBatch = defineMessage(
  "RelayBatch",
  z.object({
    receivers: z.array(z.string().min(1).max(256)).max(65_536),
    blob: z.instanceof(Uint8Array),
  }),
);

/** A {@link RelayBatch} message. */
export type RelayBatch = z.output<typeof RelayBatch.schema>;

/**
 * Packs one packet per receiver into a {@link RelayBatch}: what a leader
 * sends to a remote site's relay instead of one message per follower
 * (packages/replication's TcpPeerTransport, when members have sites).
 */
export function packForRelay(
  packets: readonly { to: string; packet: Uint8Array }[],
): RelayBatch {
  return {
    receivers: packets.map((p) => p.to),
    blob: pack(packets.map((p) => p.packet)),
  };
}

/** Where a relay hands each packet. */
export type Deliver = (to: string, packet: Uint8Array) => void | Promise<void>;

/**
 * Fans a packed blob out to its receivers (a site's relay member in
 * packages/replication): one blob crosses the long link, each packet goes
 * the short way to its receiver.
 */
export class Relay {
  readonly #deliver: Deliver;
  #forwarded = 0;

  /** @param deliver sends one packet to one receiver (e.g. over a Transport). */
  constructor(deliver: Deliver) {
    this.#deliver = deliver;
  }

  /** Packets forwarded so far. */
  get forwarded(): number {
    return this.#forwarded;
  }

  /**
   * Unpacks `batch` and delivers packet `i` to `receivers[i]`, all before
   * resolving. A receiver whose delivery fails does not stop the others.
   *
   * @returns the receivers whose delivery failed, with why.
   * @throws TransportError `protocol_error` when the blob is malformed or its
   *   packet count differs from the receivers listed (nothing is delivered).
   */
  async forward(
    batch: RelayBatch,
  ): Promise<{ to: string; error: unknown }[]> {
    const count = packedCount(batch.blob);
    if (count !== batch.receivers.length) {
      throw new TransportError(
        "protocol_error",
        `relay batch has ${count} packets for ${batch.receivers.length} receivers`,
      );
    }
    const packets = unpack(batch.blob);
    const failures: { to: string; error: unknown }[] = [];
    await Promise.all(packets.map(async (packet, i) => {
      const to = batch.receivers[i]!;
      try {
        await this.#deliver(to, packet);
        this.#forwarded++;
      } catch (error) {
        failures.push({ to, error });
      }
    }));
    return failures;
  }
}
