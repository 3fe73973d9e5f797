/**
 * @module
 * strata's BigTable-style table store on GFS and the kv service. This
 * entry point exports the tablet (the BigTable data model on one LSM
 * store, `./tablet/mod.ts`); the other parts have their own exports:
 * `@strata/tables/client` (`TablesClient`), `@strata/tables/feeds`
 * (`FeedClient`) and `@strata/tables/stack_launcher` (a whole cell as
 * processes). See the README.
 */
export * from "./tablet/mod.ts";
