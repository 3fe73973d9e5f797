/**
 * Test helper process: uploads `--bytes` of generated data to `--path`
 * (never holding the file), downloads it back, and prints the SHA-256 of
 * both sides and this process's peak RSS (VmHWM) as one JSON line.
 */
import { createHash } from "node:crypto";
import { GfsClient } from "./client/client.ts";

const [master, path, bytesArg] = Deno.args;
const total = Number(bytesArg);
// The token comes in the environment (the test's STRATA_TOKEN).
const client = new GfsClient(master!, { token: Deno.env.get("STRATA_TOKEN") });

/** Deterministic pseudo-random bytes, 1 MiB at a time. */
function* generate(
  n: number,
  hash: ReturnType<typeof createHash>,
): Generator<Uint8Array> {
  let x = 0x9e3779b9;
  for (let done = 0; done < n;) {
    const len = Math.min(2 ** 20, n - done);
    const buf = new Uint8Array(len);
    const words = new Uint32Array(buf.buffer, 0, len >> 2);
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    hash.update(buf);
    done += len;
    collect(done);
    yield buf;
  }
}

// Started with --v8-flags=--expose-gc: collecting every 8 MiB makes peak RSS
// show what the client keeps alive, not how lazily V8 frees buffers.
const gc = (globalThis as { gc?: () => void }).gc;
let lastGc = 0;
function collect(at: number): void {
  if (gc && at - lastGc >= 8 * 2 ** 20) {
    lastGc = at;
    gc();
  }
}

const up = createHash("sha256");
await client.upload(path!, generate(total, up));
const afterUpload = hwm();
lastGc = 0;
const down = createHash("sha256");
const d = await client.download(path!);
let got = 0;
for await (const part of d.stream) {
  down.update(part);
  got += part.length;
  collect(got);
}
function hwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
console.log(JSON.stringify({
  uploaded: up.digest("hex"),
  downloaded: down.digest("hex"),
  bytes: got,
  peakRssAfterUploadBytes: afterUpload,
  peakRssBytes: hwm(),
}));
