import { z } from "zod";

/** The searchable text fields of a document, in scoring order. */
export const TEXT_FIELDS = ["name", "body"] as const;
/** One of {@link TEXT_FIELDS}. */
export type TextField = typeof TEXT_FIELDS[number];

/** Default per-field BM25 boosts: a word in the name counts twice. */
export const DEFAULT_FIELD_BOOSTS: Record<TextField, number> = {
  name: 2,
  body: 1,
};

/** Largest document accepted, in UTF-16 units of name + body. */
export const MAX_DOCUMENT_CHARS = 1_000_000;

/** A document as clients send it (one NDJSON line of `POST /v1/docs`). */
export const DocumentSchema = z.object({
  id: z.string().min(1).max(256).regex(
    /^[\x21-\x7e]+$/,
    "id must be printable ASCII without spaces",
  ),
  user_id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  name: z.string().max(10_000),
  body: z.string().max(MAX_DOCUMENT_CHARS).default(""),
  /** Creation time (ms since the epoch, or any increasing number); stamped by the coordinator when absent. */
  created: z.number().finite().optional(),
}).strict();

/** A validated document. */
export type SearchDocument = z.infer<typeof DocumentSchema>;

/** A document as stored in a segment: `created` is always set. */
export type StoredDocument = SearchDocument & { created: number };
