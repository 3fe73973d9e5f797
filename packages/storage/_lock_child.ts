/** Child process of the lock test: holds the lock on `Deno.args[0]` until killed. */
import { DirLock } from "./dir_lock.ts";

await DirLock.acquire(Deno.args[0]!);
console.log("locked");
setInterval(() => {}, 1000);
