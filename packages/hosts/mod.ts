/**
 * @module
 * Real hosts and real partitions on one Linux machine: {@link HostNetwork}
 * makes N network namespaces with their own addresses on a bridge, starts
 * node processes inside them, cuts links with DROP rules inside those
 * namespaces (isolate, split, one-way loss, heal; each logged with a
 * monotonic timestamp), and removes everything it made — on `close()`, or
 * through a watchdog process when its process ends any other way (Ctrl-C,
 * kill -9), or on the next run. Needs root, iproute2 and iptables.
 *
 * @example
 * ```ts
 * import { HostNetwork, skipWithoutHosts } from "@strata/hosts";
 *
 * if (!(await skipWithoutHosts("example"))) {
 *   await using net = await HostNetwork.create({ hosts: 3 });
 *   const [h1, h2, h3] = net.hosts;
 *   const node = await net.spawn(
 *     h1!,
 *     ["run", "-A", "server.ts", "--listen", `${h1!.address}:7000`],
 *     (line) => (line as { event?: string }).event === "ready" ? line : undefined,
 *   );
 *   await net.isolate(h1!); // h1 keeps running but reaches neither h2 nor h3
 *   await net.heal();
 *   await net.split([h1!], [h2!, h3!]);
 *   await net.loss(h2!, h3!); // h2 → h3 packets dropped
 *   console.log(net.describeFaults());
 *   await node.stop();
 * }
 * ```
 */
export {
  type FaultEvent,
  type FaultKind,
  type Host,
  HostNetwork,
  type HostNetworkOptions,
  hostsUnavailable,
  skipWithoutHosts,
} from "./host_network.ts";
export { HostsError, type HostsErrorCode } from "./hosts_error.ts";
export {
  type Block,
  cut,
  type Endpoint,
  mergeBlocks,
  restoreInput,
} from "./fault_rules.ts";
export { pickFreeSubnet } from "./subnet.ts";
export {
  skipWithoutSmallDisk,
  SmallDisk,
  smallDiskUnavailable,
} from "./small_disk.ts";
