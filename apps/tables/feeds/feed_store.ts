/**
 * What a feed needs of the tables service: the part of
 * {@link TablesClient} it calls (a port, so the feed logic also runs on an
 * in-memory store in the model test). A write that may or may not have
 * been applied throws a `TablesClientError` with code `unknown_outcome`.
 */
import type {
  Bytes,
  ClientMutation,
  FamilySpec,
  ReadOptions,
  Row,
  ScanOptions,
  TablesClient,
} from "../client/tables_client.ts";

/** The tables calls a feed makes. */
export type FeedStore = Pick<
  TablesClient,
  "createTable" | "getRow" | "scan" | "checkAndMutate" | "mutateRow"
>;

export type {
  Bytes,
  ClientMutation,
  FamilySpec,
  ReadOptions,
  Row,
  ScanOptions,
};
