/**
 * A file's bytes mapped into memory with `mmap(MAP_SHARED)` (through
 * Deno's FFI and the C library). A store into {@link MappedFile.bytes} is
 * a store into the file's page cache pages: once made, it is in the file
 * for every reader and survives the process being killed, which is what a
 * `write(2)` of the same bytes promises, without a system call per write.
 * As with `write`, it reaches the device only at writeback or at an
 * `fdatasync` of the file (Linux writes back pages dirtied through a
 * mapping on `fdatasync` of any descriptor of the file).
 *
 * Linux only, and only when the process has the `ffi` permission;
 * {@link MappedFile.open} returns undefined otherwise (callers fall back
 * to `write`).
 */

const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;
/** `MAP_FAILED`, `(void *) -1`. */
const MAP_FAILED = 2n ** 64n - 1n;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Undefined until first asked; null when mapping is unavailable. */
let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    if (
      Deno.build.os === "linux" &&
      Deno.permissions.querySync({ name: "ffi" }).state === "granted"
    ) {
      // Opened once per process and never closed: the mappings outlive
      // any one log.
      libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    }
  } catch {
    libc = null;
  }
  return libc;
}

/** Whether {@link MappedFile.open} can map files in this process. */
export function canMapFiles(): boolean {
  return loadLibc() !== null;
}

/**
 * Allocates the file's first `bytes` bytes (`fallocate`, mode 0: blocks
 * reserved as unwritten extents, read as zeros, the size extended), with
 * no data written: what zero-filling a file to be mapped achieves
 * (stores into it never need new space) without writing the zeros.
 *
 * @returns false when unavailable (see {@link canMapFiles}) or refused
 *   (a file system without `fallocate`): zero-fill it instead.
 */
export function allocateFile(path: string, bytes: number): boolean {
  const c = loadLibc();
  if (c === null || !Number.isSafeInteger(bytes) || bytes <= 0) return false;
  const fd = c.open(new TextEncoder().encode(`${path}\0`), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  try {
    return c.fallocate(fd, 0, 0n, BigInt(bytes)) === 0;
  } finally {
    c.close(fd);
  }
}

/** A mapping of the first `bytes.length` bytes of a file, read and write. */
export class MappedFile {
  /** The mapped bytes: stores go straight into the file's page cache. */
  readonly bytes: Uint8Array;
  #pointer: Deno.PointerObject | null;
  readonly #length: number;

  private constructor(pointer: Deno.PointerObject, length: number) {
    this.#pointer = pointer;
    this.#length = length;
    this.bytes = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(pointer, length),
    );
  }

  /**
   * Maps the first `length` bytes of the file at `path`, which must be at
   * least that long (a store past the end of a file raises SIGBUS), and
   * whose blocks should be allocated (written, then synced), so a store
   * never needs space the file system may not have.
   *
   * @returns undefined when mapping is unavailable (not Linux, no `ffi`
   *   permission) or fails; the caller writes with `write` instead.
   */
  static open(path: string, length: number): MappedFile | undefined {
    const c = loadLibc();
    if (c === null || !Number.isSafeInteger(length) || length <= 0) {
      return undefined;
    }
    const fd = c.open(
      new TextEncoder().encode(`${path}\0`),
      O_RDWR | O_CLOEXEC,
    );
    if (fd < 0) return undefined;
    try {
      const p = c.mmap(
        null,
        BigInt(length),
        PROT_READ_WRITE,
        MAP_SHARED,
        fd,
        0n,
      );
      if (p === null || BigInt(Deno.UnsafePointer.value(p)) === MAP_FAILED) {
        return undefined;
      }
      return new MappedFile(p, length);
    } finally {
      // The mapping keeps its own reference to the file.
      c.close(fd);
    }
  }

  /**
   * Unmaps the file. {@link bytes} is detached first (length 0 from then
   * on), so a view kept by mistake reads nothing instead of unmapped
   * memory. Idempotent.
   */
  close(): void {
    const p = this.#pointer;
    if (p === null) return;
    this.#pointer = null;
    // Detaches the buffer without copying (transfer to zero bytes).
    (this.bytes.buffer as ArrayBuffer).transfer(0);
    loadLibc()?.munmap(p, BigInt(this.#length));
  }
}
