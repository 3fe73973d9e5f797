/** A child's stdout as lines, collected while it runs. */
export interface ChildLines {
  /** Every line but the ready line, in order (grows until `done`). */
  lines: string[];
  /** Resolves at the ready line, or when the stream ends without one. */
  ready: Promise<void>;
  /** Resolves when the stream ends (the child exited or was killed). */
  done: Promise<void>;
}

/**
 * Collects `stream`'s lines (a crash test's child reports each acknowledged
 * write on its own line, so every line matters, including those after the
 * ready line, which {@link spawnUntilReady} discards).
 */
export function collectLines(
  stream: ReadableStream<Uint8Array>,
  readyLine = "ready",
): ChildLines {
  const lines: string[] = [];
  let signalReady: () => void = () => {};
  const ready = new Promise<void>((r) => signalReady = r);
  const done = (async () => {
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      partial += chunk;
      const parts = partial.split("\n");
      partial = parts.pop()!;
      for (const p of parts) {
        if (p === readyLine) signalReady();
        else lines.push(p);
      }
    }
    signalReady();
  })();
  return { lines, ready, done };
}

/**
 * One round of a crash test: runs `deno run -A script ...args` (the real
 * binary, `Deno.execPath()`, so SIGKILL reaches the writer and not a
 * wrapper), waits for its ready line, lets it work for a random
 * `minMs`..`minMs + spreadMs`, kills it with SIGKILL and returns every
 * line it printed (each acknowledged write, by the crash children's
 * convention).
 */
export async function linesUntilKilled(
  script: string,
  args: readonly string[],
  timing: { minMs: number; spreadMs: number },
): Promise<string[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = collectLines(child.stdout);
  try {
    await out.ready;
    await new Promise((r) =>
      setTimeout(r, timing.minMs + Math.random() * timing.spreadMs)
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await out.done;
  }
  return out.lines;
}
