/**
 * Test support: one register operation on cell `f:q` of a row, done
 * through `TablesClient` and recorded for packages/sim's linearizability
 * checker (put, get, check-and-mutate as CAS). Shared by the tables tests
 * that check histories across splits, moves and merges.
 */
import type { KvInput, KvOperation, KvOutput } from "@strata/sim";
import {
  type TablesClient,
  TablesClientError,
} from "./client/tables_client.ts";

const dec = new TextDecoder();

/**
 * Runs `input` on `table` and returns its history entry; an
 * `unknown_outcome` is recorded without a return (it may have applied).
 * @throws any other error.
 */
export async function runKvOp(
  client: TablesClient,
  table: string,
  clientId: number,
  input: KvInput,
  now: () => number,
): Promise<KvOperation> {
  const call = now();
  try {
    let output: KvOutput;
    if (input.op === "put") {
      await client.put(table, input.key, "f", "q", input.value);
      output = { ok: true };
    } else if (input.op === "get") {
      const r = await client.getRow(table, input.key, { columns: ["f:q"] });
      output = { value: r.cells[0] ? dec.decode(r.cells[0].value) : null };
    } else if (input.op === "cas") {
      output = {
        ok: await client.checkAndMutate(table, input.key, {
          family: "f",
          qualifier: "q",
          equals: input.expected,
        }, [{ op: "put", family: "f", qualifier: "q", value: input.value }]),
      };
    } else {
      await client.deleteRow(table, input.key);
      output = { ok: true };
    }
    return { clientId, input, call, return: now(), output };
  } catch (e) {
    if (!(e instanceof TablesClientError) || e.code !== "unknown_outcome") {
      throw e;
    }
    return { clientId, input, call };
  }
}
