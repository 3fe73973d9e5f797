/**
 * Two fetch helpers the retrying clients (kv, tables) share: whether a
 * failure happened before any byte was sent, and a request body fetch
 * cannot replay.
 */

/**
 * Whether a fetch failure happened while connecting, before any byte of
 * the request was sent ("client error (Connect)", ECONNREFUSED): a write
 * that failed so was surely not applied.
 */
export function failedToConnect(e: unknown): boolean {
  const texts: string[] = [];
  for (let c = e, i = 0; c !== undefined && c !== null && i < 5; i++) {
    texts.push(c instanceof Error ? c.message : String(c));
    c = c instanceof Error ? c.cause : undefined;
  }
  return /client error \(Connect\)|connection refused|ECONNREFUSED|os error 111|dns error/i
    .test(texts.join(" | "));
}

/**
 * A request body fetch cannot replay: one chunk of `text`, or none. Deno
 * re-sends a replayable body once on a closed keep-alive connection
 * (denoland/deno#35610), which would apply a write twice.
 */
export function onceBody(text: string | undefined): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (text !== undefined) {
        controller.enqueue(new TextEncoder().encode(text));
      }
      controller.close();
    },
  });
}
