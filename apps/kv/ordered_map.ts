// sorted-btree is CommonJS; under Deno its class sits one `default` deeper
// than at the top of the module. This is the one place that knows.
import sortedBtree from "sorted-btree";

type BTreeClass = typeof sortedBtree.default;

/** A B+tree map ordered by key (sorted-btree), for range scans. */
export const OrderedMap: BTreeClass = sortedBtree.default;
/** An instance of {@link OrderedMap}. */
export type OrderedMap<K, V> = InstanceType<
  typeof sortedBtree.default<K, V>
>;
