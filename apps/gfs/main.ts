/**
 * `deno task gfs`: 3 replicated masters (Raft) and 3 chunkservers on loopback, data under
 * ./data/gfs (or `--data-dir`), endpoints printed; Ctrl-C stops all.
 *
 * Flags: `--data-dir DIR`, `--masters N` (1 = a single master on a local
 * op log), `--chunkservers N`, `--chunk-bytes 64MiB`, `--port N` (first
 * master's HTTP port, default 0 = any), `--tls-cert F --tls-key F` (every
 * process serves HTTPS, the masters' raft runs over TLS, and each trusts
 * that certificate when it calls the others).
 *
 * It supervises its processes: one that exits on its own (a crash, or a
 * master's exit code 74 after its Raft replica halted on a failed disk
 * write) is reported and restarted after 1 s, at most 5 times a minute.
 */
import { tlsFiles, tokenFile } from "@strata/edge";
import { z } from "zod";
import { num, parseGfsFlags, size } from "./shared/flags.ts";
import { REPLICA_CORRUPT_EXIT_CODE } from "@strata/replication";
import { startCluster } from "./process_cluster.ts";

const Flags = z.object({
  "data-dir": z.string().min(1).default("./data/gfs"),
  chunkservers: num.pipe(z.number().int().min(1).max(32)).default(3),
  "chunk-bytes": size.optional(),
  port: num.pipe(z.number().int().min(0).max(65535)).default(0),
  masters: num.pipe(z.number().int().min(1).max(7)).default(3),
  "tls-cert": z.string().min(1).optional(),
  "tls-key": z.string().min(1).optional(),
});

if (import.meta.main) {
  const flags = parseGfsFlags(
    Deno.args,
    Flags,
    "usage: deno task gfs [--data-dir ./data/gfs] [--masters 3] [--chunkservers 3] [--chunk-bytes 64MiB] [--port 0] [--tls-cert FILE --tls-key FILE]",
  );
  let tls;
  try {
    tls = tlsFiles({ "tls-cert": flags.tlsCert, "tls-key": flags.tlsKey });
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  try {
    cluster = await startCluster({
      dataDir: flags.dataDir,
      chunkservers: flags.chunkservers,
      masters: flags.masters,
      master: {
        port: flags.port,
        ...(flags.chunkBytes ? { chunkBytes: flags.chunkBytes } : {}),
      },
      tls,
      // A replica that refuses its damaged data exits 65: restarting it
      // cannot help (the operator re-adds it empty; see the replication README).
      supervise: { noRestartCodes: [REPLICA_CORRUPT_EXIT_CODE] },
    });
  } catch (e) {
    // The failing process already printed why (its JSON error line).
    console.error(
      `gfs did not start: ${e instanceof Error ? e.message : String(e)}`,
    );
    Deno.exit(1);
  }
  const leader = await cluster.leaderUrl();
  const all = cluster.masterUrls.join(",");
  console.log(JSON.stringify({
    event: "ready",
    master: leader,
    masters: cluster.masterUrls,
    chunkservers: cluster.chunkservers.map((c) => ({ id: c.id, url: c.url })),
    dataDir: flags.dataDir,
  }));
  const admin = tokenFile(flags.dataDir, "admin");
  // The CLI's defaults are ./data/gfs and http://127.0.0.1:7400.
  const tokenFlag =
    (flags.dataDir === "./data/gfs" ? "" : `--token-file ${admin} `) +
    (tls ? `--ca-cert ${tls.certFile} ` : "");
  const cacert = tls ? `--cacert ${tls.certFile} ` : "";
  console.log(
    `gfs masters at ${all} (leader ${leader})

Every request needs a token. The tokens are in ${flags.dataDir} (admin.token,
write.token, read.token; mode 0600). Try:
  TOKEN=$(cat ${admin})
  curl ${cacert}-H "Authorization: Bearer $TOKEN" -X PUT -H "content-type: application/octet-stream" --data-binary @README.md ${leader}/v1/files/hello
  curl ${cacert}-H "Authorization: Bearer $TOKEN" ${leader}/v1/ls
  deno task gfs:cli --master ${all} ${tokenFlag}ls`,
  );
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("stopping…");
    await cluster.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
