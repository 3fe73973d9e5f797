/** Machine-readable reasons a feed operation fails. */
export type FeedErrorCode =
  /** A bad name, partition, offset or setting. */
  | "bad_request"
  /** No such feed. */
  | "not_found"
  /** The feed exists with other settings. */
  | "exists"
  /**
   * The offset asked for is below the partition's low watermark: retention
   * deleted it. `low` is the first offset still kept.
   */
  | "below_low_watermark"
  /** An append did not get an acknowledged offset in time (nothing acknowledged), or a commit or creation got no outcome. */
  | "unavailable";

/** The error the feed client throws for expected failures; switch on `code`. */
export class FeedError extends Error {
  /** Why. */
  readonly code: FeedErrorCode;
  /** For `below_low_watermark`: the partition's low watermark. */
  readonly low?: number;

  /** @param code why; @param message what to do; @param low see {@link FeedError.low}. */
  constructor(code: FeedErrorCode, message: string, low?: number) {
    super(message);
    this.name = "FeedError";
    this.code = code;
    if (low !== undefined) this.low = low;
  }
}
