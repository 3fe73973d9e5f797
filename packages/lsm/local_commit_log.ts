import { SegmentedLog, type SyncPolicy } from "@strata/storage";
import type { CommitLog } from "./commit_log.ts";

/**
 * {@link CommitLog} on a local directory: a SegmentedLog (group commit,
 * CRC32C per record, torn tails cut on open). `append` is the
 * SegmentedLog's own, so the port costs nothing per write.
 */
export class LocalCommitLog implements CommitLog {
  /** The segmented log underneath. */
  readonly log: SegmentedLog;

  private constructor(log: SegmentedLog) {
    this.log = log;
  }

  /**
   * Opens (or creates) the log in `dir`.
   * @throws StorageError `locked` when another process has it open.
   */
  static async open(
    dir: string,
    options: { sync?: SyncPolicy; segmentBytes?: number } = {},
  ): Promise<LocalCommitLog> {
    return new LocalCommitLog(
      await SegmentedLog.open(dir, {
        sync: options.sync ?? "always",
        segmentBytes: options.segmentBytes,
      }),
    );
  }

  async recover(
    covered: number,
    apply: (index: number, record: Uint8Array) => void,
  ): Promise<number> {
    const log = this.log;
    if (log.lastIndex < covered) {
      // A log emptied or lost behind the tables must not reuse indexes the
      // manifest says are covered: later records would be skipped on replay.
      await log.reset(covered + 1);
    }
    const from = Math.max(log.firstIndex, covered + 1);
    const to = log.lastIndex + 1;
    for (let i = from; i < to; i += 1024) {
      const records = log.readSync(i, Math.min(to, i + 1024));
      records.forEach((r, k) => apply(i + k, r));
    }
    return Math.max(covered, log.lastIndex);
  }

  append(records: readonly Uint8Array[]): Promise<{ last: number }> {
    return this.log.append(records);
  }

  appendNow(records: readonly Uint8Array[]): { last: number } | undefined {
    return this.log.appendNow(records);
  }

  compactPrefix(upTo: number): Promise<unknown> {
    return this.log.compactPrefix(upTo);
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
