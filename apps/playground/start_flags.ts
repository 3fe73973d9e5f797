/** The flags of `deno task start` (apps/playground/main.ts), parsed and checked. */
import { parseArgs } from "node:util";
import { z } from "zod";

/** Usage text printed by `--help` and after a bad flag. */
export const START_USAGE =
  `usage: deno task start [--data-dir ./data/playground] [--port 8080] [--raft-http-base 2380]
                       [--no-index] [--index-limit N]

  --data-dir DIR        where every cluster keeps its data (default ./data/playground; reused by the next start)
  --port P              the dashboard's HTTP port (default 8080; 0 picks a free one)
  --raft-http-base P    raft node i serves HTTP on P+i-1 (default 2380; 0 picks free ones)
  --no-index            do not index the search corpus (start empty)
  --index-limit N       index at most N emails of the corpus (default: all)
  -h, --help            this text
`;

const FlagsSchema = z.object({
  "data-dir": z.string().min(1).default("./data/playground"),
  port: z.coerce.number().int().min(0).max(65_535).default(8080),
  "raft-http-base": z.coerce.number().int().min(0).max(65_533).default(2380),
  "no-index": z.boolean().default(false),
  "index-limit": z.coerce.number().int().positive().optional(),
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
  /** Raft node i serves HTTP on this + i - 1 (0: free ones). */
  "raft-http-base": number;
  /** Do not index the search corpus. */
  "no-index": boolean;
  /** Index at most this many emails of the corpus (undefined: all). */
  "index-limit"?: number;
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

/** Parses the command line; never throws. */
export function parseStartFlags(args: string[]): StartFlagsResult {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        "data-dir": { type: "string" },
        port: { type: "string" },
        "raft-http-base": { type: "string" },
        "no-index": { type: "boolean" },
        "index-limit": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    return {
      kind: "error",
      message: e instanceof Error ? e.message : String(e),
    };
  }
  if (values.help) return { kind: "help", text: START_USAGE };
  const { help: _, ...rest } = values;
  const parsed = FlagsSchema.safeParse(rest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      kind: "error",
      message: `--${issue.path.join(".")}: ${issue.message}`,
    };
  }
  return { kind: "run", flags: parsed.data };
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
 * The first of `ports` that cannot be bound on 127.0.0.1 now, with the
 * message to print; undefined when all are free.
 */
export function findTakenPort(
  ports: readonly FixedPort[],
): { port: FixedPort; message: string } | undefined {
  for (const p of ports) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port: p.port }).close();
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
