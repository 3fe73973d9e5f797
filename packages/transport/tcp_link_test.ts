import assert from "node:assert/strict";
import { TcpLink } from "./tcp_link.ts";
import { isTransportError } from "./transport_error.ts";

/** A socket whose writes complete only when the test says so. */
class StalledConn {
  written: number[] = [];
  #release: (() => void)[] = [];
  closed = false;
  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve) => {
      this.#release.push(() => {
        this.written.push(...bytes);
        resolve(bytes.length);
      });
    });
  }
  releaseAll(): void {
    for (const r of this.#release.splice(0)) r();
  }
  close(): void {
    this.closed = true;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("send waits when the queue is full and frames leave in call order", async () => {
  const conn = new StalledConn();
  const link = new TcpLink(conn as unknown as Deno.Conn, {
    maxQueuedBytes: 100,
    onBroken: () => {},
  });
  const settled: number[] = [];
  const writes = Array.from(
    { length: 10 },
    (_, i) =>
      link.write(() => new Uint8Array(40).fill(i)).then(() => settled.push(i)),
  );
  await tick();
  // 40 + 40 + 40 ≥ 100: the first three are admitted, the rest wait.
  assert.deepEqual(settled, [0, 1, 2]);
  assert.ok(link.queuedBytes <= 120);
  while (settled.length < 10) {
    conn.releaseAll();
    await tick();
    assert.ok(link.queuedBytes <= 140, `queued ${link.queuedBytes}`);
  }
  await Promise.all(writes);
  for (let k = 0; k < 5; k++) {
    conn.releaseAll();
    await tick();
  }
  const order = conn.written.filter((_, j) => j % 40 === 0);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("writers waiting when the link closes are rejected with closed", async () => {
  const conn = new StalledConn();
  const link = new TcpLink(conn as unknown as Deno.Conn, {
    maxQueuedBytes: 10,
    onBroken: () => {},
  });
  await link.write(() => new Uint8Array(20));
  const waiting = link.write(() => new Uint8Array(5));
  link.close();
  await assert.rejects(waiting, (e) => isTransportError(e, "closed"));
  conn.releaseAll();
  await tick();
  await tick();
  assert.ok(conn.closed);
});

Deno.test("a write that fails breaks the link and rejects its waiters", async () => {
  let broken: unknown;
  const conn = {
    write: () => Promise.reject(new Error("reset by peer")),
    close() {},
  };
  const link = new TcpLink(conn as unknown as Deno.Conn, {
    maxQueuedBytes: 10,
    onBroken: (e) => broken = e,
  });
  await link.write(() => new Uint8Array(20));
  const waiting = link.write(() => new Uint8Array(5));
  await assert.rejects(waiting, /reset by peer/);
  assert.match(String(broken), /reset by peer/);
});
