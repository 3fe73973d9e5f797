// A test child for host_network_test.ts: makes a 2-host network, prints
// its namespace and link names, then waits to be killed (SIGTERM: its
// handler must remove everything; SIGKILL: the next harness must).
import { HostNetwork } from "./host_network.ts";

const net = await HostNetwork.create({ hosts: 2 });
console.log(JSON.stringify({
  event: "ready",
  netns: net.hosts.map((h) => h.netns),
  subnet: net.subnet,
}));
setInterval(() => {}, 60_000); // alive until killed
