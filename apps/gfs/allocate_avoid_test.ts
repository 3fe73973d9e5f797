// A client that retries a chunk names the servers its failed write went
// through (`avoid`), and the master places the retry elsewhere: until it
// declares a cut-off server dead it would otherwise place it again.
import assert from "node:assert/strict";
import { CreatedSchema, WriteTargetSchema } from "./shared/messages.ts";
import { fetchAs, startTestCell, until } from "./_test_support.ts";

Deno.test("allocate places a chunk away from the servers the client asks to avoid, with and without a write grant", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gfs-avoid-" });
  const cell = await startTestCell(dir, {
    chunkBytes: 1 << 20,
    replication: 3,
    servers: 4,
  });
  try {
    const api = fetchAs(cell.secrets.tokens.admin);
    const rpc = async (path: string, body: unknown) => {
      const res = await api(`${cell.master.url}/v1/rpc/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200, await res.clone().text());
      return await res.json();
    };
    await until("4 live chunkservers", async () => {
      const h = await (await api(`${cell.master.url}/v1/health`)).json();
      return h.liveServers === 4;
    }, 20_000);
    const { fileId } = CreatedSchema.parse(await rpc("create", { path: "/f" }));
    for (const grant of [true, false]) {
      for (let index = 0; index < 4; index++) {
        const avoid = [cell.servers[index]!.url];
        const t = WriteTargetSchema.parse(
          await rpc("allocate", { path: "/f", fileId, index, grant, avoid }),
        );
        const placed = [t.primary, ...t.secondaries];
        assert.equal(placed.length, 3, `grant ${grant}: ${placed}`);
        assert.ok(!placed.includes(avoid[0]!), `grant ${grant}: ${placed}`);
      }
    }
  } finally {
    await cell.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
