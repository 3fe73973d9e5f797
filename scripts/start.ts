/**
 * `deno task start`: the first thing a new user runs. Until the apps and
 * the playground exist, it runs the codec comparison (strata's codec vs
 * cbor-x, JSON and msgpackr on strata's own message shapes) and prints the
 * table and ratios. Nothing to configure, no external server.
 */
console.log("strata: running the codec benchmark comparison (bench:codec)…");
console.log("(the apps and the playground will start here as they land)\n");
await import("../benches/codec.bench.ts");
