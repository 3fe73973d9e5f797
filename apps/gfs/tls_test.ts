/**
 * A cell over TLS end to end: 3 replicated masters (raft over TLS too) and
 * 2 chunkservers as real processes started with --tls-cert/--tls-key of a
 * self-signed certificate; a client trusting it uploads (the push chain
 * and the master's commands go chunkserver to chunkserver and master to
 * chunkserver over HTTPS), reads back, follows a follower's redirect, and
 * the CLI works with --ca-cert; plain HTTP and clients that do not trust
 * the certificate get nowhere.
 */
import assert from "node:assert/strict";
import { selfSignedCert, tlsClient } from "@strata/edge";
import { GfsClient } from "./client/client.ts";
import { startCluster } from "./process_cluster.ts";
import { pattern } from "./_test_support.ts";

const CHUNK = 64 * 1024;

Deno.test({
  name:
    "gfs over TLS: replicated masters and chunkservers serve HTTPS with a self-signed certificate; upload, read, redirect and CLI work; plain HTTP and untrusting clients are refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "gfs-tls-" });
    const tls = await selfSignedCert(dir);
    const cluster = await startCluster({
      dataDir: `${dir}/cell`,
      masters: 3,
      chunkservers: 2,
      master: { chunkBytes: CHUNK, replication: 2, tickMs: 200 },
      chunkserver: () => ({ heartbeatMs: 200, scrubPauseMs: 50 }),
      tls,
    });
    const httpClient = await tlsClient(tls.certFile);
    const token = cluster.secrets!.tokens.admin;
    try {
      await t.step("every process serves https", () => {
        for (const s of [...cluster.masters, ...cluster.chunkservers]) {
          assert.match(s.url, /^https:\/\//);
        }
      });
      const leader = await cluster.leaderIndex(60_000);
      // Start at a follower: its 307 names the leader by an https URL.
      const order = [
        ...cluster.masterUrls.slice(leader + 1),
        ...cluster.masterUrls.slice(0, leader + 1),
      ];
      const client = new GfsClient(order, { token, httpClient });
      const data = pattern(2 * CHUNK + 777, 14);
      await t.step(
        "a 3-chunk file round-trips through the push chain",
        async () => {
          const r = await client.upload("/tls/f", data);
          assert.equal(r.length, data.length);
          assert.deepEqual(await client.readAll("/tls/f"), data);
          const stat = await client.stat("/tls/f");
          assert.equal(stat.length, data.length);
        },
      );
      await t.step(
        "a follower redirects to the leader's https URL",
        async () => {
          const follower = cluster.masterUrls[(leader + 1) % 3]!;
          const res = await fetch(`${follower}/v1/ls`, {
            headers: { authorization: `Bearer ${token}` },
            client: httpClient,
            redirect: "manual",
          });
          await res.body?.cancel();
          assert.equal(res.status, 307);
          assert.match(res.headers.get("location") ?? "", /^https:\/\//);
        },
      );
      await t.step("the CLI with --ca-cert lists the file", async () => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("./cli.ts", import.meta.url).pathname,
            "--master",
            cluster.masterUrls.join(","),
            "--token",
            token,
            "--ca-cert",
            tls.certFile,
            "ls",
            "/tls/",
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert.equal(
          out.code,
          0,
          new TextDecoder().decode(out.stderr),
        );
        assert.match(text, /\/tls\/f/);
      });
      await t.step(
        "plain HTTP and a client without the CA get nowhere",
        async () => {
          const url = new URL(cluster.masterUrls[leader]!);
          await assert.rejects(
            fetch(`http://${url.host}/v1/ls`, {
              headers: { authorization: `Bearer ${token}` },
              signal: AbortSignal.timeout(5000),
            }).then((r) => r.body?.cancel()),
          );
          await assert.rejects(
            fetch(`${cluster.masterUrls[leader]}/v1/ls`, {
              headers: { authorization: `Bearer ${token}` },
              signal: AbortSignal.timeout(5000),
            }).then((r) => r.body?.cancel()),
            (e: Error) => /certificate|UnknownIssuer/i.test(String(e.cause)),
          );
        },
      );
    } finally {
      httpClient.close();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
