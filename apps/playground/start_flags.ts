/** The flags of `deno task start` (apps/playground/main.ts), parsed and checked. */
import { EDGE_FLAGS, parseFlags } from "@strata/edge";
import { z } from "zod";

/** Usage text printed by `--help` and after a bad flag. */
export const START_USAGE =
  `usage: deno task start [--data-dir ./data/playground] [--port 8080] [--listen 127.0.0.1]
                       [--allowed-hosts a,b] [--raft-http-base 2380] [--no-index] [--index-limit N]
                       [--tls | --tls-cert F --tls-key F]

  --data-dir DIR        where every cluster keeps its data (default ./data/playground; reused by the next start)
  --port P              the dashboard's HTTP port (default 8080; 0 picks a free one)
  --listen HOST         the dashboard's address (default 127.0.0.1). Off loopback every request
                        needs the dashboard token (DIR/auth/read.token, created 0600 on first
                        start; a browser asks for it as a password), and actions the page's token
  --allowed-hosts L     extra Host names the dashboard answers to, comma-separated (default:
                        loopback names and --listen)
  --raft-http-base P    raft node i serves HTTP on P+i-1 (default 2380; 0 picks free ones)
  --no-index            do not index the search corpus (start empty)
  --index-limit N       index at most N emails of the corpus (default: all)
  --tls                 run every cluster and the dashboard over HTTPS with a self-signed
                        certificate for localhost/127.0.0.1, made with openssl on first use
                        in DIR/tls/{cert,key}.pem (reused by later starts)
  --tls-cert FILE       the same with your PEM certificate (with --tls-key): every process
  --tls-key FILE        serves it and trusts it when calling the others
  -h, --help            this text
`;

const FlagsSchema = z.object({
  "data-dir": z.string().min(1).default("./data/playground"),
  port: z.coerce.number().int().min(0).max(65_535).default(8080),
  listen: z.string().min(1).default("127.0.0.1"),
  "allowed-hosts": EDGE_FLAGS["allowed-hosts"],
  "raft-http-base": z.coerce.number().int().min(0).max(65_533).default(2380),
  "no-index": z.boolean().default(false),
  "index-limit": z.coerce.number().int().positive().optional(),
  tls: z.boolean().default(false),
  "tls-cert": EDGE_FLAGS["tls-cert"],
  "tls-key": EDGE_FLAGS["tls-key"],
});

/**
 * Checked flags, defaults filled in. The zod schema above checks them and
 * fills the defaults; this spells out its output (a compile-time check
 * below keeps the two the same).
 */
export interface StartFlags {
  /** Where every cluster keeps its data. */
  "data-dir": string;
  /** The dashboard's HTTP port (0: any free one). */
  port: number;
  /** The dashboard's listen address. */
  listen: string;
  /** Extra Host names the dashboard answers to. */
  "allowed-hosts": string[];
  /** Raft node i serves HTTP on this + i - 1 (0: free ones). */
  "raft-http-base": number;
  /** Do not index the search corpus. */
  "no-index": boolean;
  /** Index at most this many emails of the corpus (undefined: all). */
  "index-limit"?: number;
  /** Everything over HTTPS with a self-signed certificate in DATA/tls. */
  tls: boolean;
  /** Everything over HTTPS with this certificate (and `tls-key`). */
  "tls-cert"?: string;
  /** The private key of `tls-cert`. */
  "tls-key"?: string;
}

/** True when `A` and `B` are assignable to each other. */
type Same<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false;
/** Fails to compile when {@link StartFlags} and the schema's output differ. */
type _StartFlagsMatchSchema = AssertTrue<
  Same<StartFlags, z.output<typeof FlagsSchema>>
>;
type AssertTrue<T extends true> = T;

/** What {@link parseStartFlags} decided. */
export type StartFlagsResult =
  | { kind: "run"; flags: StartFlags }
  | { kind: "help"; text: string }
  | { kind: "error"; message: string };

/** Parses the command line (the edge package's flag rules); never throws. */
export function parseStartFlags(args: string[]): StartFlagsResult {
  const r = parseFlags(args, FlagsSchema, START_USAGE);
  if (r.kind !== "ok") return r;
  const f = r.flags;
  if ((f["tls-cert"] === undefined) !== (f["tls-key"] === undefined)) {
    return { kind: "error", message: "--tls-cert and --tls-key go together" };
  }
  if (f.tls && f["tls-cert"] !== undefined) {
    return {
      kind: "error",
      message:
        "--tls makes its own certificate; leave out --tls-cert and --tls-key",
    };
  }
  return { kind: "run", flags: f };
}

/** A fixed port the playground needs, and the flag that moves it. */
export interface FixedPort {
  /** The port number. */
  port: number;
  /** The flag that moves it (`--port`, `--raft-http-base`). */
  flag: string;
  /** What listens on it, for messages ("the dashboard", "raft node 1"). */
  what: string;
}

/** Every fixed port of a start with these flags (port 0 means "any", so it is not listed). */
export function fixedPorts(flags: StartFlags): FixedPort[] {
  const ports: FixedPort[] = [];
  if (flags.port !== 0) {
    ports.push({ port: flags.port, flag: "--port", what: "the dashboard" });
  }
  for (let i = 0; i < 3 && flags["raft-http-base"] !== 0; i++) {
    ports.push({
      port: flags["raft-http-base"] + i,
      flag: "--raft-http-base",
      what: `raft node ${i + 1}`,
    });
  }
  return ports;
}

/**
 * The first of `ports` that cannot be bound on `hostname` now, with the
 * message to print; undefined when all are free.
 */
export function findTakenPort(
  ports: readonly FixedPort[],
  hostname = "127.0.0.1",
): { port: FixedPort; message: string } | undefined {
  for (const p of ports) {
    try {
      Deno.listen({ hostname, port: p.port }).close();
    } catch {
      return {
        port: p,
        message:
          `port ${p.port} (${p.what}) is taken — is another start running? Pick another with ${p.flag}`,
      };
    }
  }
  return undefined;
}
