/**
 * `rooms_on_server.ts`: puts the pub/sub rooms on a tablet server: the
 * kv directory, the {@link RoomsPubSub} and its routes on the server's
 * app (behind its edge guard, which must know the peer secret).
 */
import type { Hono } from "hono";
import type { KvClient } from "@strata/kv";
import type { Access } from "@strata/edge";
import type { TabletHost } from "../server/tablet_host.ts";
import { RoomsDirectory } from "./rooms_directory.ts";
import { RoomsPubSub } from "./rooms_service.ts";
import { createRoomsApi } from "./rooms_api.ts";

/** Options of {@link attachRooms}. */
export interface AttachRoomsOptions {
  id: string;
  kv: KvClient;
  host: TabletHost;
  access: Pick<Access, "secrets">;
  /** The server's current kv registration. */
  registration(): { session: number; lease: { valid: boolean } } | undefined;
  /** The fetch client for other servers and the master (trusts the cell's TLS certificate). */
  httpClient?: Deno.HttpClient;
  log(line: string): void;
}

/** The rooms of a server, to start once it listens and stop with it. */
export interface AttachedRooms {
  rooms: RoomsPubSub;
  /** Gives the server's own URL (it follows kv once rooms are used). */
  start(url: string): void;
  stop(): Promise<void>;
}

/** Mounts the rooms' routes on `app` and returns the service. */
export function attachRooms(app: Hono, o: AttachRoomsOptions): AttachedRooms {
  const directory = new RoomsDirectory({
    kv: o.kv,
    adminToken: o.access.secrets?.tokens.admin,
    ...(o.httpClient ? { httpClient: o.httpClient } : {}),
    log: o.log,
  });
  let url = "";
  const rooms = new RoomsPubSub({
    id: o.id,
    url: () => url,
    host: o.host,
    serving: () => o.registration()?.lease.valid ?? false,
    session: () => url ? o.registration()?.session : undefined,
    directory,
    peerToken: o.access.secrets?.peerSecret,
    ...(o.httpClient ? { httpClient: o.httpClient } : {}),
    log: o.log,
  });
  app.route("/", createRoomsApi(rooms, o.id));
  return {
    rooms,
    start(u) {
      url = u;
    },
    async stop() {
      rooms.close();
      await directory.stop();
    },
  };
}
