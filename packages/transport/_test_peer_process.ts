// A peer in its own process, for tests that kill it: serves the test
// message set on 127.0.0.1 at the port given (0: any) and prints the port.
import { type Messages, messages } from "./_test_messages.ts";
import { listenTcp } from "./tcp_transport.ts";

const port = Number(Deno.args[0] ?? "0");
const server = listenTcp<Messages>({
  set: messages,
  port,
  handlers: {
    async onRequest(req) {
      if (req.type === "Slow") {
        await new Promise((r) => setTimeout(r, req.message.ms));
      }
      return req;
    },
  },
});
console.log(`port ${server.port}`);
