import type { TableSchema } from "./types.ts";

/** The crash test's table: every version kept, so each acknowledged cell stays readable. */
export const CRASH_SCHEMA: TableSchema = {
  name: "crash",
  families: [{ name: "f", maxVersions: 2 ** 31 }],
};
