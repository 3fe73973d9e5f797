import { CodecError } from "./codec_error.ts";
import { crc32c } from "./crc32c.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  type Frame,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC_0,
  FRAME_MAGIC_1,
  FRAME_TRAILER_BYTES,
  FRAME_VERSION,
} from "./frame.ts";

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest payload accepted, in bytes (default 16 MiB). */
  maxFrameBytes?: number;
}

/**
 * Incremental frame decoder: feed it bytes as they arrive, in any split
 * (one byte at a time included), and it returns each whole frame once.
 *
 * Memory is bounded by one frame: a length prefix over the limit is
 * rejected from the header alone, before its payload is awaited. After an
 * error the decoder stays failed (the stream cannot be resynchronised
 * safely) and rethrows the same error.
 */
export class FrameDecoder {
  readonly #max: number;
  #buf = new Uint8Array(1024);
  #start = 0;
  #end = 0;
  #error: CodecError | undefined;

  /** @param options limits; see {@link FrameDecoderOptions}. */
  constructor(options: FrameDecoderOptions = {}) {
    this.#max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes held of a frame not yet complete (0 between frames). */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The error that failed this decoder, if any. */
  get error(): CodecError | undefined {
    return this.#error;
  }

  /**
   * Adds bytes and returns the frames they complete, in order.
   * @throws CodecError `bad_magic`, `unsupported_version`, `too_large` or
   *   `checksum_mismatch`; the decoder is failed from then on.
   */
  push(chunk: Uint8Array): Frame[] {
    if (this.#error) throw this.#error;
    this.#append(chunk);
    const frames: Frame[] = [];
    try {
      for (;;) {
        const frame = this.#next();
        if (!frame) break;
        frames.push(frame);
      }
    } catch (e) {
      if (e instanceof CodecError) this.#error = e;
      throw e;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return frames;
  }

  /**
   * Declares the stream over.
   * @throws CodecError `truncated` when it ended inside a frame.
   */
  finish(): void {
    if (this.#error) throw this.#error;
    if (this.buffered > 0) {
      this.#error = new CodecError(
        "truncated",
        `stream ended ${this.buffered} bytes into a frame`,
      );
      throw this.#error;
    }
  }

  #append(chunk: Uint8Array): void {
    const held = this.#end - this.#start;
    if (this.#end + chunk.length > this.#buf.length) {
      if (held + chunk.length <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buf.length * 2;
        while (size < held + chunk.length) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  #next(): Frame | undefined {
    const b = this.#buf;
    const s = this.#start;
    const held = this.#end - s;
    // Reject garbage from its first bytes rather than waiting for a header.
    if (held >= 1 && b[s] !== FRAME_MAGIC_0) throw badMagic();
    if (held >= 2 && b[s + 1] !== FRAME_MAGIC_1) throw badMagic();
    if (held >= 3 && b[s + 2] !== FRAME_VERSION) {
      throw new CodecError(
        "unsupported_version",
        `frame version ${
          b[s + 2]
        } is not supported (this side speaks ${FRAME_VERSION})`,
      );
    }
    if (held < FRAME_HEADER_BYTES) return undefined;
    const view = new DataView(b.buffer, b.byteOffset + s, FRAME_HEADER_BYTES);
    const length = view.getUint32(6, true);
    if (length > this.#max) {
      throw new CodecError(
        "too_large",
        `frame announces ${length} bytes; the limit is ${this.#max}`,
      );
    }
    const total = FRAME_HEADER_BYTES + length + FRAME_TRAILER_BYTES;
    if (held < total) return undefined;
    const bodyEnd = s + FRAME_HEADER_BYTES + length;
    const expected = new DataView(b.buffer, b.byteOffset + bodyEnd, 4)
      .getUint32(0, true);
    if (crc32c(b.subarray(s, bodyEnd)) !== expected) {
      throw new CodecError("checksum_mismatch", "frame checksum mismatch");
    }
    const frame: Frame = {
      flags: b[s + 3]!,
      type: view.getUint16(4, true),
      // A copy: the buffer is reused for the frames after this one.
      payload: b.slice(s + FRAME_HEADER_BYTES, bodyEnd),
    };
    this.#start = s + total;
    return frame;
  }
}

function badMagic(): CodecError {
  return new CodecError("bad_magic", "bytes do not start with a strata frame");
}
