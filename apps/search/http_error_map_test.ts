import assert from "node:assert/strict";
import { Hono } from "hono";
import { installErrorHandlers } from "@strata/edge";
import { searchErrorToEdge } from "./http_error_map.ts";
import { SearchError, type SearchErrorCode } from "./search_error.ts";

Deno.test("SearchErrors answer with their code's status; server faults are a generic, logged 500", async () => {
  const logged: string[] = [];
  const app = new Hono();
  app.get("/:code", (c) => {
    throw new SearchError(
      c.req.param("code") as SearchErrorCode,
      "segment /data/x.seg checksum mismatch",
    );
  });
  installErrorHandlers(app, {
    name: "t",
    map: searchErrorToEdge,
    log: (l) => logged.push(l),
  });
  const cases: Array<[SearchErrorCode, number]> = [
    ["bad_query", 400],
    ["bad_document", 400],
    ["bad_request", 400],
    ["not_found", 404],
    ["too_large", 413],
    ["unsupported_media_type", 415],
    ["unavailable", 503],
    ["corrupt_segment", 500],
    ["io", 500],
  ];
  for (const [code, status] of cases) {
    const res = await app.request(`/${code}`);
    const body = await res.json();
    assert.equal(res.status, status, code);
    if (status !== 500) {
      assert.equal(body.error.code, code);
      assert.match(body.error.message, /checksum mismatch/);
    } else {
      assert.equal(body.error.code, "internal");
      assert.doesNotMatch(body.error.message, /data|checksum/);
    }
  }
  assert.equal(logged.length, 2);
  assert.match(logged[0]!, /checksum mismatch/);
});
