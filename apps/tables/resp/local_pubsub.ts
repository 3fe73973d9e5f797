/**
 * `local_pubsub.ts`: a {@link PubSubPort} for one tablet server, in
 * process: a publish reaches the subscribers connected to this server
 * only (the cross-server rooms of `../rooms/` replace it). Delivery is
 * synchronous, so messages of one channel arrive in publish order.
 */
import type {
  ChannelListener,
  PatternListener,
  PubSubPort,
} from "../shared/pubsub_port.ts";
import { globMatch } from "./glob.ts";

/** In-process pub/sub: `publish` counts this server's subscribers. */
export class LocalPubSub implements PubSubPort {
  #channels = new Map<string, Set<ChannelListener>>();
  #patterns = new Map<string, Set<PatternListener>>();

  /** Delivers to every local subscriber; resolves to how many got it. */
  publish(channel: string, message: Uint8Array): Promise<number> {
    let n = 0;
    const direct = this.#channels.get(channel);
    if (direct) {
      for (const l of [...direct]) {
        l(channel, message);
        n++;
      }
    }
    for (const [pattern, ls] of this.#patterns) {
      if (!globMatch(pattern, channel)) continue;
      for (const l of [...ls]) {
        l(pattern, channel, message);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  /** Subscribes a listener to one channel. */
  subscribe(channel: string, listener: ChannelListener): () => void {
    return add(this.#channels, channel, listener);
  }

  /** Subscribes a listener to a glob pattern. */
  psubscribe(pattern: string, listener: PatternListener): () => void {
    return add(this.#patterns, pattern, listener);
  }
}

function add<L>(map: Map<string, Set<L>>, name: string, l: L): () => void {
  let set = map.get(name);
  if (!set) map.set(name, set = new Set());
  set.add(l);
  return () => {
    const s = map.get(name);
    if (!s) return;
    s.delete(l);
    if (s.size === 0) map.delete(name);
  };
}
