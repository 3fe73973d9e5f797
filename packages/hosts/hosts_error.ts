/** Machine-readable reasons the hosts harness can fail. */
export type HostsErrorCode =
  /** Not root, no `ip`/`iptables`, or network namespaces are not permitted. */
  | "unavailable"
  /** No private /24 is free on this machine. */
  | "no_subnet"
  /** An `ip` or `iptables` command failed (its stderr is in the message). */
  | "command_failed"
  /** A host index or argument is out of range. */
  | "bad_argument"
  /** The network was closed. */
  | "closed";

/** The one error the hosts package throws; switch on `code`. */
export class HostsError extends Error {
  /** Why. */
  readonly code: HostsErrorCode;

  /** @param code why; @param message a sentence a person can act on. */
  constructor(code: HostsErrorCode, message: string) {
    super(message);
    this.name = "HostsError";
    this.code = code;
  }
}
