/**
 * Reads `length` bytes at `offset` of `file`: one `lseek` and one `read`
 * (more only if the kernel returns a short read).
 *
 * Deno has no `pread`. Synchronous seek + read on a handle cannot be
 * interleaved with any other JavaScript, so a handle dedicated to reads
 * needs no mutex; the price is that the event loop waits for the read
 * (microseconds from the page cache, one disk access otherwise).
 *
 * @returns the bytes; shorter than `length` only when the file ends first.
 */
export function readAtSync(
  file: Deno.FsFile,
  offset: number,
  length: number,
  into?: Uint8Array,
): Uint8Array {
  const buf = into !== undefined && into.length >= length
    ? into.subarray(0, length)
    : new Uint8Array(length);
  file.seekSync(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = file.readSync(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}
