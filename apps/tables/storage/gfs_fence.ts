import { type GfsClient, isGfsError } from "@strata/gfs";

/** A store's owner found that a newer owner has claimed the store. */
export class FencedError extends Error {
  /** Always `"fenced"`. */
  readonly code = "fenced";
  /**
   * True when the refused write was already appended to the log before the
   * check found the newer owner: a successor's replay may still apply it,
   * so its outcome is unknown (the caller must not re-send it as unapplied).
   */
  readonly maybeApplied: boolean;
  constructor(message: string, options: { maybeApplied?: boolean } = {}) {
    super(message);
    this.name = "FencedError";
    this.maybeApplied = options.maybeApplied ?? false;
  }
}

/** Is `e` a {@link FencedError}? */
export function isFencedError(e: unknown): e is FencedError {
  return e instanceof FencedError;
}

const pad = (n: number) => String(n).padStart(10, "0");

/**
 * Ownership of a store kept in GFS under `dir`, with a fencing epoch.
 *
 * Each owner claims the next epoch by creating `dir/claims/<epoch>` (GFS
 * create is exclusive: of two claimers of one epoch, one gets `conflict`
 * and tries the next). Claims are consecutive and never deleted, so the
 * owner of epoch `e` has been superseded exactly when `claims/<e+1>`
 * exists: {@link GfsFence.check} is one `stat` at the master.
 *
 * The owner calls `check` after each durable write whose success it is
 * about to act on (a commit log append before acknowledging it, a
 * manifest before deleting what the manifest replaced). A newer owner
 * claims before it reads anything, so either the old owner's write was
 * durable before the claim (the new owner sees it) or the old owner's
 * check sees the claim and does not act on the write.
 */
export class GfsFence {
  /** This owner's epoch (1, 2, …). */
  readonly epoch: number;
  readonly #gfs: GfsClient;
  readonly #dir: string;
  #fenced = false;

  private constructor(gfs: GfsClient, dir: string, epoch: number) {
    this.#gfs = gfs;
    this.#dir = dir;
    this.epoch = epoch;
  }

  /**
   * Claims the next epoch of the store in `dir` (an absolute GFS path).
   * `owner` is recorded in the claim (for people reading the files), and
   * so is `log`, the server log the owner will write the store's records
   * to (its next owner reads them there: `log_sources.ts`).
   * @throws GfsError `unavailable` when no claim succeeds within `timeoutMs`.
   */
  static async claim(
    gfs: GfsClient,
    dir: string,
    owner = "",
    timeoutMs = 30_000,
    log?: string,
  ): Promise<GfsFence> {
    const started = performance.now();
    let lastErr: unknown = null;
    for (let attempt = 0; performance.now() - started < timeoutMs; attempt++) {
      const claims = await gfs.ls(`${dir}/claims/`);
      let max = 0;
      for (const f of claims) {
        const n = Number(f.path.slice(f.path.lastIndexOf("/") + 1));
        if (Number.isSafeInteger(n) && n > max) max = n;
      }
      const epoch = max + 1;
      try {
        await gfs.upload(
          `${dir}/claims/${pad(epoch)}`,
          new TextEncoder().encode(JSON.stringify({
            owner,
            at: Date.now(),
            ...(log !== undefined ? { log } : {}),
          })),
        );
        return new GfsFence(gfs, dir, epoch);
      } catch (e) {
        // Another claimer holds this epoch (done or in flight): list again.
        if (!isGfsError(e, "conflict")) throw e;
        lastErr = e;
        await new Promise((r) => setTimeout(r, Math.min(500, 20 * attempt)));
      }
    }
    throw lastErr;
  }

  /** Whether a check has seen a newer owner. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /**
   * Resolves when no newer owner has claimed the store.
   * @throws FencedError when one has (and on every later call);
   *   GfsError when the master cannot answer (treat as not confirmed).
   */
  async check(): Promise<void> {
    if (!this.#fenced) {
      try {
        await this.#gfs.stat(this.supersededBy);
        this.#fenced = true;
      } catch (e) {
        if (isGfsError(e, "not_found")) return;
        throw e;
      }
    }
    this.observe(true);
  }

  /**
   * The claim whose existence means this owner was superseded
   * (`claims/<epoch + 1>`): for a check made together with others (a
   * server log's one `exists` call per block), then given to
   * {@link GfsFence.observe}.
   */
  get supersededBy(): string {
    return `${this.#dir}/claims/${pad(this.epoch + 1)}`;
  }

  /**
   * Takes the answer of a check made elsewhere, after the write it guards
   * was durable: whether {@link GfsFence.supersededBy} exists.
   * @throws FencedError when it does (and on every later call).
   */
  observe(superseded: boolean): void {
    if (superseded) this.#fenced = true;
    if (!this.#fenced) return;
    throw new FencedError(
      `${this.#dir}: epoch ${this.epoch} was superseded by a newer owner`,
    );
  }
}
