/**
 * The secrets of a cluster, kept as files in its data directory (mode
 * 0600), generated on first start: one bearer token per role and the
 * peer secret the raft transport authenticates with. One line each, so a
 * shell can use them: `curl -H "Authorization: Bearer $(cat DIR/admin.token)"`.
 */
import { encodeBase64Url } from "./_base64url.ts";
import { type Role, ROLES } from "./roles.ts";

/** The secrets of {@link loadOrCreateSecrets}. */
export interface ClusterSecrets {
  /** The directory the files are in. */
  readonly dir: string;
  /** One bearer token per role. */
  readonly tokens: Readonly<Record<Role, string>>;
  /** Shared secret of the peer (raft) transport. */
  readonly peerSecret: string;
}

/** File name of a role's token in the secrets directory. */
export function tokenFile(dir: string, role: Role): string {
  return `${dir}/${role}.token`;
}

/** File name of the peer secret in the secrets directory. */
export function peerSecretFile(dir: string): string {
  return `${dir}/peer.secret`;
}

/**
 * A fresh random secret: 32 bytes from the system's CSPRNG, base64url (43
 * characters), prefixed with `s` so it never starts with `-`: command-line
 * parsers take `--token -abc…` for a missing value (1 token in 64 did).
 */
export function randomSecret(): string {
  return "s" + encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/**
 * Reads the one-line secret at `path`, creating it (mode 0600, exclusively,
 * so two processes starting together agree) when it does not exist.
 * @throws Error when the file is empty or cannot be read or written.
 */
async function loadOrCreate(path: string): Promise<string> {
  try {
    await Deno.writeTextFile(path, randomSecret() + "\n", {
      createNew: true,
      mode: 0o600,
    });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const stat = await Deno.stat(path);
  if (stat.mode !== null && (stat.mode & 0o077) !== 0) {
    // Someone loosened it: tighten rather than serve with a readable secret.
    await Deno.chmod(path, 0o600);
    console.error(`${path} was readable by others; set its mode to 0600`);
  }
  const text = (await Deno.readTextFile(path)).trim();
  if (text.length < 16) {
    throw new Error(
      `${path} holds no usable secret (at least 16 characters); delete it to generate a new one`,
    );
  }
  return text;
}

/**
 * Loads the secrets from `dir`, generating each missing one (mode 0600).
 * Never logs them.
 * @throws Error when the directory or a file cannot be created or read.
 */
export async function loadOrCreateSecrets(
  dir: string,
): Promise<ClusterSecrets> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tokens = {} as Record<Role, string>;
  for (const role of ROLES) {
    tokens[role] = await loadOrCreate(tokenFile(dir, role));
  }
  return { dir, tokens, peerSecret: await loadOrCreate(peerSecretFile(dir)) };
}

/**
 * Reads one secret file (a token or the peer secret), trimmed.
 * @throws Error naming the file when it is missing or empty.
 */
export async function readSecretFile(path: string): Promise<string> {
  let text: string;
  try {
    text = (await Deno.readTextFile(path)).trim();
  } catch (e) {
    throw new Error(
      `cannot read ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
  if (text === "") throw new Error(`${path} is empty`);
  return text;
}

/** Where {@link readToken} looks for a caller's token. */
export interface TokenSources {
  /** A token given on the command line (`--token`). */
  token?: string;
  /** A file holding one (`--token-file`). */
  tokenFile?: string;
  /** The directory whose `admin.token` is the last resort (a launcher's data dir). */
  defaultDir: string;
}

/**
 * The token a client or CLI uses: `token`, else the file `tokenFile`, else
 * the environment variable STRATA_TOKEN, else `<defaultDir>/admin.token`
 * when that file exists (what a `deno task` launcher generates), else none.
 * @throws Error when a named file cannot be read.
 */
export async function readToken(
  sources: TokenSources,
): Promise<string | undefined> {
  if (sources.token) return sources.token;
  if (sources.tokenFile) return await readSecretFile(sources.tokenFile);
  const env = Deno.env.get("STRATA_TOKEN");
  if (env) return env;
  try {
    return await readSecretFile(tokenFile(sources.defaultDir, "admin"));
  } catch {
    return undefined;
  }
}
