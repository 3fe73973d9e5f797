/**
 * How a node's HTTP status and a tables client failure become the
 * dashboard's errors (one mapping for the live backend and the DataLayer
 * demos).
 */
import { TablesClientError } from "@strata/tables/client";
import {
  PlaygroundError,
  type PlaygroundErrorCode,
} from "./playground_error.ts";

/** A node's HTTP error status → the dashboard's code (others: by class). */
export const CODE_BY_STATUS: Record<number, PlaygroundErrorCode> = {
  400: "bad_request",
  404: "not_found",
  409: "conflict",
  413: "too_large",
  503: "unavailable",
  504: "timeout",
};

/** A tables client failure as the dashboard reports it (a PlaygroundError passes through). */
export function fromTablesError(e: unknown): PlaygroundError {
  if (e instanceof PlaygroundError) return e;
  if (e instanceof TablesClientError) {
    const code = CODE_BY_STATUS[e.status] ??
      (e.code === "unknown_outcome" || e.code === "timeout"
        ? "timeout"
        : "unavailable");
    return new PlaygroundError(code, e.message);
  }
  return new PlaygroundError(
    "unavailable",
    e instanceof Error ? e.message : String(e),
  );
}
