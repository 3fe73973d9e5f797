/**
 * @module
 * strata's BigTable-style table store (issue 19). Today: the tablet, the
 * BigTable data model on one LSM store (see `./tablet/mod.ts`).
 */
export * from "./tablet/mod.ts";
