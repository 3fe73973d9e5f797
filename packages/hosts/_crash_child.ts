// A test child for host_network_test.ts: makes a 2-host network, prints
// its namespace names and its watchdog's pid, then waits to be killed
// (its watchdog must then remove everything; if the watchdog is killed
// too, the next harness must).
import { HostNetwork } from "./host_network.ts";

const net = await HostNetwork.create({ hosts: 2 });
console.log(JSON.stringify({
  event: "ready",
  netns: net.hosts.map((h) => h.netns),
  subnet: net.subnet,
  watchdog: net.watchdogPid,
}));
setInterval(() => {}, 60_000); // alive until killed
