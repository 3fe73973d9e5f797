import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { failedToConnect, onceBody } from "./fetch_failure.ts";

Deno.test("failedToConnect: a refused connection, not any other failure", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const refused = await fetch(`http://127.0.0.1:${port}/`).then(
    () => undefined,
    (e) => e,
  );
  strictEqual(failedToConnect(refused), true);
  strictEqual(failedToConnect(new TypeError("error reading a body")), false);
  strictEqual(
    failedToConnect(new Error("outer", { cause: new Error("ECONNREFUSED") })),
    true,
  );
});

Deno.test("onceBody: the text's bytes in one stream, or an empty one", async () => {
  deepStrictEqual(
    new TextDecoder().decode(await new Response(onceBody("héllo")).bytes()),
    "héllo",
  );
  strictEqual((await new Response(onceBody(undefined)).bytes()).length, 0);
});
