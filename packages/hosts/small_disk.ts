/**
 * A small disk for one test: a tmpfs of a given size mounted over a
 * directory inside a private mount namespace, so processes started in it
 * (through {@link SmallDisk.prefix}) meet a real `ENOSPC` once it is
 * {@link SmallDisk.fill}ed, while the rest of the machine sees the
 * directory unchanged. The namespace lives as long as a holder process
 * that reads a pipe from this process: when the test ends in any way the
 * pipe closes, the holder exits, and the mount goes with the last process
 * inside it — nothing is left on the machine. Needs root and util-linux's
 * `unshare` and `nsenter`.
 */

/** A tmpfs disk in a private mount namespace. Create with {@link SmallDisk.create}. */
export class SmallDisk {
  /** The directory the disk is mounted on (inside the namespace). */
  readonly dir: string;
  readonly #holder: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;

  private constructor(
    dir: string,
    holder: Deno.ChildProcess,
    stdin: WritableStreamDefaultWriter<Uint8Array>,
  ) {
    this.dir = dir;
    this.#holder = holder;
    this.#stdin = stdin;
  }

  /**
   * Mounts a `sizeMiB` tmpfs over `dir` (an existing directory) in a new
   * mount namespace.
   * @throws Error when the namespace or the mount cannot be made.
   */
  static async create(dir: string, sizeMiB: number): Promise<SmallDisk> {
    const holder = new Deno.Command("unshare", {
      args: [
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs -o "size=$1m" strata-small-disk "$0" && echo mounted && exec cat >/dev/null',
        dir,
        String(sizeMiB),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = holder.stdin.getWriter();
    // The holder prints "mounted" once the disk is there, or exits.
    let out = "";
    const reader = holder.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    while (!out.includes("mounted")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    reader.cancel().catch(() => {});
    if (!out.includes("mounted")) {
      await stdin.close().catch(() => {});
      const status = await holder.status;
      const err = new TextDecoder().decode(
        (await holder.stderr.getReader().read()).value ?? new Uint8Array(),
      );
      throw new Error(
        `cannot mount a small disk on ${dir} (exit ${status.code}): ${err.trim()}`,
      );
    }
    holder.stderr.cancel().catch(() => {});
    return new SmallDisk(dir, holder, stdin);
  }

  /** The command that runs a program inside the namespace, in this process's working directory (a `spawnUntilReady` prefix). */
  get prefix(): string[] {
    return [
      "nsenter",
      "-t",
      String(this.#holder.pid),
      "-m",
      `--wd=${Deno.cwd()}`,
      "--",
    ];
  }

  /** Fills the disk up with a file `filler`: the next write that needs space fails with ENOSPC. */
  async fill(): Promise<void> {
    await this.#sh('cat /dev/zero > "$0/filler" 2>/dev/null; true');
  }

  /** Deletes the filler: there is room again. */
  async free(): Promise<void> {
    await this.#sh('rm -f "$0/filler"');
  }

  /** Ends the holder; the mount goes once no process runs inside the namespace. */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.#holder.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #sh(script: string): Promise<void> {
    const out = await new Deno.Command("nsenter", {
      args: [
        "-t",
        String(this.#holder.pid),
        "-m",
        "--",
        "sh",
        "-c",
        script,
        this.dir,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `nsenter failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
  }
}

/** Why {@link SmallDisk} cannot run here, or undefined when it can. */
export async function smallDiskUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "small disks need Linux";
  if (Deno.uid() !== 0) return "small disks need root (mount namespaces)";
  const dir = await Deno.makeTempDir({ prefix: "strata-small-disk-" });
  try {
    const d = await SmallDisk.create(dir, 1);
    await d.close();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await Deno.remove(dir).catch(() => {});
  }
}

/**
 * True (after printing why) when the test should be skipped because
 * {@link SmallDisk} cannot run here; under `CI` never skips, so the test
 * fails instead, as {@link skipWithoutHosts} does.
 */
export async function skipWithoutSmallDisk(testFile: string): Promise<boolean> {
  if (Deno.env.get("CI")) return false;
  const why = await smallDiskUnavailable();
  if (why === undefined) return false;
  console.warn(`${testFile}: skipped, ${why}`);
  return true;
}
