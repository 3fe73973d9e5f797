import { EdgeError } from "@strata/edge";
import { SearchError } from "./search_error.ts";

/**
 * The edge's `installErrorHandlers` map for search: a SearchError the
 * caller caused (or an unavailable shard) becomes the EdgeError of the same
 * code; `corrupt_segment` and `io` are the server's own trouble, so they are
 * left to the edge's generic 500 (logged, their text never sent).
 */
export function searchErrorToEdge(e: unknown): EdgeError | undefined {
  if (!(e instanceof SearchError)) return undefined;
  switch (e.code) {
    case "corrupt_segment":
    case "io":
      return undefined;
    default:
      return new EdgeError(e.code, e.message, undefined, e);
  }
}
