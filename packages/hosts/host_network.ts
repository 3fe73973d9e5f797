/**
 * N hosts on one machine: Linux network namespaces, each with its own
 * address on a private /24, joined by veth pairs to a bridge in the
 * machine's namespace (where clients run). Node processes start inside a
 * host; faults are DROP rules inside the hosts' own namespaces. Everything
 * made is removed by `close()`, by a watchdog process when the harness's
 * process ends any other way (Ctrl-C, kill -9), and, should the watchdog
 * be gone too, by the next harness on the machine.
 */
import {
  type ReadyProcess,
  type SpawnOptions,
  spawnUntilReady,
} from "@strata/process";
import { type Block, cut, type Endpoint, restoreInput } from "./fault_rules.ts";
import { HostsError } from "./hosts_error.ts";
import {
  forgetOwner,
  LINK_PATTERN,
  NETNS_PATTERN,
  ownerAlive,
  recordOwner,
  withSetupLock,
} from "./owner_registry.ts";
import { formatIpv4, pickFreeSubnet, prefixesInIpOutput } from "./subnet.ts";
import { startWatchdog, type Watchdog } from "./watchdog.ts";

/** One host: a network namespace with one address. */
export interface Host {
  /** 0-based position in {@link HostNetwork.hosts}. */
  readonly index: number;
  /** `h1`, `h2`, … (1-based, for logs). */
  readonly name: string;
  /** The namespace's name (`ip netns exec <netns> …`). */
  readonly netns: string;
  /** Its IPv4 address on the bridge. */
  readonly address: string;
}

/** What kind of fault (or its end) an entry of the fault log records. */
export type FaultKind = "isolate" | "split" | "loss" | "heal";

/** One entry of the fault log. */
export interface FaultEvent {
  /** When the rules were in effect, on the network's clock (ms; `performance.now()` by default). */
  at: number;
  kind: FaultKind;
  /** E.g. `split h1,h2 | h3,h4,h5`. */
  description: string;
}

/** Options of {@link HostNetwork.create}. */
export interface HostNetworkOptions {
  /** Number of hosts (1-200). */
  hosts: number;
  /**
   * The clock of the fault log, ms: pass the clock of your client history
   * so the two read side by side (default `performance.now`).
   */
  now?: () => number;
}

/** Whether a `ip`/`iptables` command ran; its output. */
interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  stdin?: string,
): Promise<CommandResult> {
  try {
    const child = new Deno.Command(cmd, {
      args,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    const out = await child.output();
    return {
      ok: out.success,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } catch (e) {
    return { ok: false, stdout: "", stderr: String(e) };
  }
}

function runSync(cmd: string, args: string[]): CommandResult {
  try {
    const out = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    return {
      ok: out.success,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  } catch (e) {
    return { ok: false, stdout: "", stderr: String(e) };
  }
}

async function must(cmd: string, args: string[], stdin?: string) {
  const r = await run(cmd, args, stdin);
  if (!r.ok) {
    throw new HostsError(
      "command_failed",
      `${cmd} ${args.join(" ")}: ${r.stderr.trim() || "failed"}`,
    );
  }
  return r.stdout;
}

/**
 * Removes the namespaces and links of instance `id`: first SIGKILLs any
 * process still inside one of its namespaces, since a namespace lives on
 * while a process is in it. Only names carrying `id` are touched.
 */
function removeInstanceSync(id: string): void {
  const netns = runSync("ip", ["netns", "list"]).stdout.split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => NETNS_PATTERN.exec(n)?.[1] === id);
  for (const ns of netns) {
    for (
      const pid of runSync("ip", ["netns", "pids", ns]).stdout.split(/\s+/)
    ) {
      if (/^\d+$/.test(pid)) {
        try {
          Deno.kill(Number(pid), "SIGKILL");
        } catch { /* gone */ }
      }
    }
    runSync("ip", ["netns", "del", ns]);
  }
  for (const link of listLinksSync()) {
    if (LINK_PATTERN.exec(link)?.[1] === id) {
      runSync("ip", ["link", "del", link]);
    }
  }
  forgetOwner(id);
}

function listLinksSync(): string[] {
  return runSync("ip", ["-o", "link", "show"]).stdout.split("\n")
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

/** Removes what harnesses whose process has ended left behind. Call under the setup lock. */
function sweepLeftovers(): void {
  const ids = new Set<string>();
  for (const l of runSync("ip", ["netns", "list"]).stdout.split("\n")) {
    const id = NETNS_PATTERN.exec(l.split(" ")[0]!)?.[1];
    if (id) ids.add(id);
  }
  for (const link of listLinksSync()) {
    const id = LINK_PATTERN.exec(link)?.[1];
    if (id) ids.add(id);
  }
  for (const id of ids) if (!ownerAlive(id)) removeInstanceSync(id);
}

/**
 * Why the harness cannot run here (not root, no `ip` or `iptables-restore`,
 * network namespaces refused), or undefined when it can.
 */
export async function hostsUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root";
  if (!(await run("ip", ["-V"])).ok) {
    return "`ip` is missing (apt-get install -y iproute2)";
  }
  if (!(await run("iptables-restore", ["--version"])).ok) {
    return "`iptables-restore` is missing (apt-get install -y iptables)";
  }
  const probe = `strata-hosts-${randomId()}-probe`;
  return await withSetupLock(async () => {
    const r = await run("ip", ["netns", "add", probe]);
    await run("ip", ["netns", "del", probe]);
    return r.ok
      ? undefined
      : `cannot create a network namespace: ${r.stderr.trim()}`;
  }).catch((e) => e instanceof Error ? e.message : String(e));
}

/**
 * For `Deno.test({ ignore })`: true (skip) when the harness cannot run and
 * `CI` is unset, after printing why; false in CI, so the test runs and
 * fails with the reason ({@link HostNetwork.create} throws `unavailable`).
 */
export async function skipWithoutHosts(testFile: string): Promise<boolean> {
  if (Deno.env.get("CI")) return false;
  const why = await hostsUnavailable();
  if (why === undefined) return false;
  console.warn(`${testFile}: skipped, ${why}`);
  return true;
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(3));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** N hosts joined by a bridge, with fault verbs. Create with {@link HostNetwork.create}. */
export class HostNetwork {
  /** The hosts, in order. */
  readonly hosts: readonly Host[];
  /** The machine namespace's address on the bridge: where clients in this process connect from. */
  readonly rootAddress: string;
  /** The /24 in use, e.g. `10.37.201.0/24`. */
  readonly subnet: string;
  /** Every fault and heal so far, in order. */
  readonly faults: FaultEvent[] = [];
  readonly #id: string;
  readonly #now: () => number;
  readonly #processes = new Set<ReadyProcess<unknown>>();
  #watchdog?: Watchdog;
  #blocks: Block[] = [];
  readonly #applied: string[];
  #closed = false;

  private constructor(
    id: string,
    base: number,
    count: number,
    now: () => number,
  ) {
    this.#id = id;
    this.#now = now;
    this.subnet = `${formatIpv4(base)}/24`;
    this.rootAddress = formatIpv4(base + 1);
    this.hosts = Array.from({ length: count }, (_, i) => ({
      index: i,
      name: `h${i + 1}`,
      netns: `strata-hosts-${id}-h${i + 1}`,
      address: formatIpv4(base + 2 + i),
    }));
    this.#applied = this.hosts.map(() => restoreInput(0, [], () => ""));
  }

  /**
   * Creates the bridge and the hosts. Also removes what earlier harnesses
   * left behind when their process is gone.
   * @throws HostsError `unavailable` (not root, tools missing, namespaces
   * refused, bridged traffic blocked), `no_subnet`, `command_failed`.
   */
  static async create(options: HostNetworkOptions): Promise<HostNetwork> {
    const count = options.hosts;
    if (!Number.isInteger(count) || count < 1 || count > 200) {
      throw new HostsError("bad_argument", `hosts must be 1-200, not ${count}`);
    }
    const why = await hostsUnavailable();
    if (why !== undefined) {
      throw new HostsError("unavailable", `hosts harness: ${why}`);
    }
    await checkBridgedTrafficAllowed();
    return await withSetupLock(async () => {
      sweepLeftovers();
      const used = prefixesInIpOutput(
        (await must("ip", ["-4", "-o", "addr", "show"])) +
          (await must("ip", ["-4", "route", "show", "table", "all"])),
      );
      const base = pickFreeSubnet(used);
      if (base === undefined) {
        throw new HostsError("no_subnet", "no private /24 is free here");
      }
      let id = randomId();
      while (ownerAlive(id)) id = randomId(); // ids are unique on the machine
      recordOwner(id); // before anything exists, so a crash mid-setup is swept
      const net = new HostNetwork(
        id,
        base,
        count,
        options.now ?? (() => performance.now()),
      );
      net.#watchdog = startWatchdog(id);
      try {
        await net.#build();
      } catch (e) {
        await net.close(0);
        throw e;
      }
      return net;
    });
  }

  async #build(): Promise<void> {
    const br = `sth${this.#id}b`;
    await must("ip", ["link", "add", br, "type", "bridge"]);
    await must("ip", ["addr", "add", `${this.rootAddress}/24`, "dev", br]);
    await must("ip", ["link", "set", br, "up"]);
    for (const h of this.hosts) {
      const v = `sth${this.#id}v${h.index + 1}`;
      const p = `sth${this.#id}p${h.index + 1}`;
      await must("ip", ["netns", "add", h.netns]);
      await must("ip", [
        "link",
        "add",
        v,
        "type",
        "veth",
        "peer",
        "name",
        p,
        "netns",
        h.netns,
      ]);
      await must("ip", ["link", "set", v, "master", br, "up"]);
      await must("ip", [
        "-n",
        h.netns,
        "addr",
        "add",
        `${h.address}/24`,
        "dev",
        p,
      ]);
      await must("ip", ["-n", h.netns, "link", "set", p, "up"]);
      await must("ip", ["-n", h.netns, "link", "set", "lo", "up"]);
    }
  }

  /** The host named `h<n>` or at index `n`. @throws HostsError `bad_argument`. */
  host(ref: string | number): Host {
    const h = typeof ref === "number"
      ? this.hosts[ref]
      : this.hosts.find((x) => x.name === ref);
    if (!h) throw new HostsError("bad_argument", `no host ${ref}`);
    return h;
  }

  /**
   * Runs `deno <args>` inside `host` (through `ip netns exec`, which execs
   * deno in the same process, so signals sent to the child reach it) and
   * waits for its ready line, as {@link spawnUntilReady}. The process is
   * killed by {@link close} if still running.
   */
  async spawn<T>(
    host: Host,
    args: string[],
    isReady: (line: unknown) => T | undefined,
    options: SpawnOptions = {},
  ): Promise<ReadyProcess<T>> {
    this.#open();
    const p = await spawnUntilReady(args, isReady, {
      name: `${args.find((a) => a.endsWith(".ts")) ?? "deno"} on ${host.name}`,
      ...options,
      prefix: ["ip", "netns", "exec", host.netns],
    });
    this.#processes.add(p);
    p.child.status.then(() => this.#processes.delete(p));
    return p;
  }

  /**
   * Cuts `host` from every other host, both ways. With `root: true` it is
   * also cut from the machine's namespace (clients of this process).
   */
  isolate(host: Host, options: { root?: boolean } = {}): Promise<void> {
    const others: Endpoint[] = this.hosts.filter((h) => h !== host).map((h) =>
      h.index
    );
    if (options.root) others.push("root");
    return this.#add(
      others.flatMap((o) => cut(host.index, o)),
      "isolate",
      `isolate ${host.name}${options.root ? " (and from clients)" : ""}`,
    );
  }

  /** Cuts every host of `a` from every host of `b`, both ways (clients still reach both). */
  split(a: Host[], b: Host[]): Promise<void> {
    return this.#add(
      a.flatMap((x) => b.flatMap((y) => cut(x.index, y.index))),
      "split",
      `split ${a.map((h) => h.name).join(",")} | ${
        b.map((h) => h.name).join(",")
      }`,
    );
  }

  /**
   * Drops packets from `from` to `to` (one way) with `probability`
   * (default 1: all). `"root"` is the machine's namespace. Over TCP a
   * one-way loss of every packet stalls connections both ways (the
   * acknowledgements are lost too); a partial loss slows them down.
   */
  loss(
    from: Host | "root",
    to: Host | "root",
    probability = 1,
  ): Promise<void> {
    if (!(probability > 0 && probability <= 1)) {
      throw new HostsError("bad_argument", "probability must be in (0, 1]");
    }
    const e = (x: Host | "root"): Endpoint => x === "root" ? "root" : x.index;
    const name = (x: Host | "root") => x === "root" ? "clients" : x.name;
    return this.#add(
      [{ from: e(from), to: e(to), probability }],
      "loss",
      `loss ${name(from)} → ${name(to)}${
        probability < 1 ? ` p=${probability}` : ""
      }`,
    );
  }

  /** Ends every fault. */
  async heal(): Promise<void> {
    this.#open();
    this.#blocks = [];
    await this.#apply();
    this.faults.push({ at: this.#now(), kind: "heal", description: "heal" });
  }

  /**
   * The fault log, one line each, times in seconds relative to `origin`
   * (on the network's clock), to print beside a failing history.
   */
  describeFaults(origin = 0): string {
    return this.faults.map((f) =>
      `${((f.at - origin) / 1000).toFixed(3).padStart(8)} s  ${f.description}`
    ).join("\n");
  }

  async #add(blocks: Block[], kind: FaultKind, description: string) {
    this.#open();
    this.#blocks.push(...blocks);
    await this.#apply();
    this.faults.push({ at: this.#now(), kind, description });
  }

  async #apply(): Promise<void> {
    const address = (e: Endpoint) =>
      e === "root" ? this.rootAddress : this.hosts[e]!.address;
    await Promise.all(this.hosts.map(async (h) => {
      const text = restoreInput(h.index, this.#blocks, address);
      if (text === this.#applied[h.index]) return;
      await must("ip", [
        "netns",
        "exec",
        h.netns,
        "iptables-restore",
        "-w",
        "5",
      ], text);
      this.#applied[h.index] = text;
    }));
  }

  #open() {
    if (this.#closed) throw new HostsError("closed", "the network is closed");
  }

  /**
   * Stops every process started in a host (SIGTERM, SIGKILL after
   * `graceMs`), then removes the namespaces, links and rules. Safe to call
   * twice.
   */
  async close(graceMs = 3000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      [...this.#processes].map((p) => p.stop(false, graceMs).catch(() => {})),
    );
    removeInstanceSync(this.#id);
    await this.#watchdog?.disarm();
  }

  /** `await using net = await HostNetwork.create(...)` closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The instance id: 6 hex digits in every name this network made (netns `strata-hosts-<id>-h<n>`, links `sth<id>…`). */
  get id(): string {
    return this.#id;
  }

  /** The watchdog's pid (for tests of the sweep that kill it). */
  get watchdogPid(): number | undefined {
    return this.#watchdog?.pid;
  }
}

/**
 * With br_netfilter loaded, bridged frames cross the machine's FORWARD
 * chain; a DROP policy there (as Docker sets) would silently cut every
 * host from every other. Only read, never change, the machine's rules.
 */
async function checkBridgedTrafficAllowed(): Promise<void> {
  let callsIptables = "0";
  try {
    callsIptables = Deno.readTextFileSync(
      "/proc/sys/net/bridge/bridge-nf-call-iptables",
    ).trim();
  } catch { /* br_netfilter not loaded: bridged frames skip iptables */ }
  if (callsIptables !== "1") return;
  const r = await run("iptables", ["-S", "FORWARD"]);
  if (r.ok && /^-P FORWARD (DROP|REJECT)/m.test(r.stdout)) {
    throw new HostsError(
      "unavailable",
      "hosts harness: the FORWARD policy is DROP and bridged traffic goes through iptables (net.bridge.bridge-nf-call-iptables=1), so hosts could not reach each other",
    );
  }
}
