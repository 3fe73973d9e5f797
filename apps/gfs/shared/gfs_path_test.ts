import assert from "node:assert/strict";
import { isGfsError } from "./gfs_error.ts";
import { ancestors, parsePath, parseTrashPath, trashPath } from "./gfs_path.ts";

Deno.test("valid paths are normalised and bad ones rejected as bad_request", () => {
  assert.equal(parsePath("/a/b.txt"), "/a/b.txt");
  assert.equal(parsePath("/a/b/"), "/a/b");
  for (
    const bad of ["", "a", "/", "//a", "/a/../b", "/a/./b", "/a b", "/a\0"]
  ) {
    assert.throws(
      () => parsePath(bad),
      (e) => isGfsError(e, "bad_request"),
      bad,
    );
  }
  assert.throws(() => parsePath("/" + "x".repeat(2000)), (e) => isGfsError(e));
});

Deno.test("ancestors list every directory above a path, shallowest first", () => {
  assert.deepEqual(ancestors("/a/b/c"), ["/a", "/a/b"]);
  assert.deepEqual(ancestors("/a"), []);
});

Deno.test("a trash path keeps the deletion time and the original path", () => {
  const t = trashPath("/x/y", 1234);
  assert.deepEqual(parseTrashPath(t), { deletedAtMs: 1234, original: "/x/y" });
  assert.equal(parseTrashPath("/x/y"), null);
});
