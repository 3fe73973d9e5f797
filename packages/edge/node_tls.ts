/**
 * TLS material of a node process from its flags: the certificate it serves
 * (`--tls-cert/--tls-key`) and the roots it trusts when it calls other
 * nodes (`--ca-cert`, else its own certificate, for a cluster sharing one
 * self-signed certificate) — for its HTTP listener, its fetch client and
 * its raw TLS peer connections alike.
 */
import { EdgeConfigError } from "./access_config.ts";
import { tlsFiles } from "./flags.ts";

/** What {@link nodeTls} read. */
export interface NodeTls {
  /** The certificate and key this node serves (PEM files and their text). */
  serve?: { certFile: string; keyFile: string; cert: string; key: string };
  /** PEM roots other nodes' certificates must chain to (none: system roots). */
  caCerts?: string[];
}

/**
 * Reads the TLS files named by `--tls-cert`, `--tls-key` and `--ca-cert`.
 * `--ca-cert` alone makes a node that serves plain HTTP but calls TLS nodes.
 * @throws EdgeConfigError when only one of cert/key is given or a file
 *   cannot be read (the message names the flag).
 */
export async function nodeTls(
  flags: { "tls-cert"?: string; "tls-key"?: string; "ca-cert"?: string },
): Promise<NodeTls> {
  let files;
  try {
    files = tlsFiles(flags);
  } catch (e) {
    throw new EdgeConfigError(e instanceof Error ? e.message : String(e));
  }
  const read = async (file: string, flag: string) => {
    try {
      return await Deno.readTextFile(file);
    } catch (e) {
      throw new EdgeConfigError(
        `${flag} ${file}: cannot read: ${e instanceof Error ? e.message : e}`,
      );
    }
  };
  const out: NodeTls = {};
  if (files) {
    out.serve = {
      ...files,
      cert: await read(files.certFile, "--tls-cert"),
      key: await read(files.keyFile, "--tls-key"),
    };
  }
  const ca = flags["ca-cert"];
  if (ca !== undefined) out.caCerts = [await read(ca, "--ca-cert")];
  else if (out.serve) out.caCerts = [out.serve.cert];
  return out;
}

/**
 * A fetch client trusting the node's {@link NodeTls.caCerts} (undefined
 * without any: the default client then trusts the system's roots).
 */
export function nodeHttpClient(tls: NodeTls): Deno.HttpClient | undefined {
  return tls.caCerts
    ? Deno.createHttpClient({ caCerts: tls.caCerts })
    : undefined;
}

/**
 * `Deno.serve`'s certificate options for a node serving TLS (none
 * otherwise), for listeners not started with `serveHttp`.
 */
export function tlsServeOptions(
  tls: NodeTls | undefined,
): { cert: string; key: string } | Record<never, never> {
  const t = tls?.serve;
  return t ? { cert: t.cert, key: t.key } : {};
}
