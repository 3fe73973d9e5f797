/**
 * Starting an HTTP(S) listener: Deno.serve with the optional TLS files of
 * `--tls-cert/--tls-key`, and a clear error when the port is taken.
 */
import { EdgeConfigError } from "./access_config.ts";

/** Options of {@link serveHttp}. */
export interface ServeOptions {
  /** Address to bind. */
  hostname: string;
  /** Port (0: any free one). */
  port: number;
  /** Answers a request. */
  handler: (
    request: Request,
    info: Deno.ServeHandlerInfo,
  ) => Response | Promise<Response>;
  /** PEM certificate and key files: serve HTTPS. */
  tls?: { certFile: string; keyFile: string };
}

/** A running listener. */
export interface HttpListener {
  /** The server (shutdown(), finished). */
  readonly server: Deno.HttpServer<Deno.NetAddr>;
  /** `host:port` as bound (the real port when 0 was asked for). */
  readonly address: string;
  /** "http" or "https". */
  readonly scheme: "http" | "https";
  /** `scheme://host:port`. */
  readonly url: string;
}

/**
 * Binds and serves.
 * @throws EdgeConfigError when the port is taken or the TLS files cannot be read.
 */
export async function serveHttp(options: ServeOptions): Promise<HttpListener> {
  let tls: { cert: string; key: string } | undefined;
  if (options.tls) {
    try {
      tls = {
        cert: await Deno.readTextFile(options.tls.certFile),
        key: await Deno.readTextFile(options.tls.keyFile),
      };
    } catch (e) {
      throw new EdgeConfigError(
        `cannot read the TLS certificate or key: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
  }
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: () => {},
      ...(tls ?? {}),
    }, options.handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new EdgeConfigError(
        `${options.hostname}:${options.port} is taken; choose another port`,
      );
    }
    throw new EdgeConfigError(
      `cannot listen on ${options.hostname}:${options.port}: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const host = options.hostname.includes(":")
    ? `[${options.hostname}]`
    : options.hostname;
  const address = `${host}:${server.addr.port}`;
  const scheme = tls ? "https" : "http";
  return { server, address, scheme, url: `${scheme}://${address}` };
}
