import type { Context, Hono } from "hono";
import type { z } from "zod";
import { httpStatusOf, isSearchError, SearchError } from "./search_error.ts";

/** Body of every error answer: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Answers a SearchError (or anything else, as a bare 500) as JSON, never with a stack trace. */
export function errorResponse(c: Context, e: unknown): Response {
  if (isSearchError(e)) {
    const body: ErrorBody = { error: { code: e.code, message: e.message } };
    const details = (e as SearchError & { details?: unknown }).details;
    if (details !== undefined) body.error.details = details;
    return c.json(body, httpStatusOf(e.code));
  }
  return c.json(
    {
      error: { code: "internal", message: "internal error" },
    } satisfies ErrorBody,
    500,
  );
}

/** Installs JSON 404 and error handlers on an app. */
export function installErrorHandlers(app: Hono): void {
  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `no route ${c.req.method} ${c.req.path}`,
      },
    }, 404)
  );
  app.onError((e, c) => errorResponse(c, e));
}

/** A SearchError carrying structured details (line numbers, failed shards). */
export function detailedError(
  code: SearchError["code"],
  message: string,
  details: unknown,
): SearchError {
  return Object.assign(new SearchError(code, message), { details });
}

/** Validates `value` with a zod schema; `bad_request` naming the first problem otherwise. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue && issue.path.length > 0
    ? ` at ${issue.path.join(".")}`
    : "";
  throw new SearchError(
    "bad_request",
    `bad ${what}${path}: ${issue?.message ?? "invalid"}`,
  );
}

/** Reads a JSON request body (at most `maxBytes`), as `bad_request` / `too_large` errors. */
export async function readJson(c: Context, maxBytes: number): Promise<unknown> {
  const text = await readText(c, maxBytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new SearchError("bad_request", "the body is not valid JSON");
  }
}

/** Reads a request body as text, refusing more than `maxBytes`. */
export async function readText(c: Context, maxBytes: number): Promise<string> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new SearchError(
      "too_large",
      `the body is ${declared} bytes; at most ${maxBytes} are accepted`,
    );
  }
  const body = c.req.raw.body;
  if (body === null) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new SearchError("too_large", `the body is over ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    all.set(ch, off);
    off += ch.length;
  }
  return new TextDecoder().decode(all);
}
