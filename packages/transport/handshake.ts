import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  controlFrame,
  type ControlMessage,
  PROTOCOL_VERSION,
} from "./control_frames.ts";
import { TransportError } from "./transport_error.ts";

/** Which end of a connection this side is: the dialer or the listener. */
export type Role = "client" | "server";

/** Inputs of a {@link Handshake}. */
export interface HandshakeOptions {
  role: Role;
  /** The message set's fingerprint (`MessageSet.fingerprint`). */
  fingerprint: string;
  /**
   * Which kinds this side sends and accepts as diffs
   * (`differentialSignature`); when both sides name one, they must match.
   */
  differential?: string;
  /**
   * Shared secret; when set, the peer must prove it knows it too. A server
   * may accept any of several (a list): it then answers with its own proof
   * only after the client's proof matched one of them, keyed by that one.
   */
  secret?: Secret | readonly Secret[];
  /** 32 fresh random bytes: this side's challenge to the peer. */
  nonce: Uint8Array;
}

/** A shared secret: text or bytes. */
export type Secret = string | Uint8Array;

/** What a handshake step asks the caller to do. */
export interface HandshakeStep {
  /** Frames to send, in order. */
  send: Uint8Array[];
  /** True once the peer is accepted and messages may flow. */
  done: boolean;
}

/**
 * The connection handshake as a pure state machine (no I/O).
 *
 * Both sides send `hello` = [protocol version, message-set fingerprint,
 * nonce, auth required, differential kinds] first. A side accepts the peer's
 * hello only when the version, fingerprint and differential kinds equal its
 * own and both agree on authentication.
 * With a shared secret each side then sends
 * `HMAC-SHA256(secret, role ‖ peer nonce ‖ own nonce)`, answering the
 * peer's fresh challenge; the secret itself never travels, a recorded proof
 * is useless against a new nonce, and the role label stops a proof from
 * being reflected back at its sender. A side is done when it accepted the
 * hello and (with a secret) verified the peer's proof; since a peer sends
 * its proof before any message, a receiver is always done before the first
 * message arrives, and anything else before that is a protocol error.
 */
export class Handshake {
  readonly #o: HandshakeOptions;
  /** The candidate secrets (empty: no authentication). */
  readonly #secrets: readonly Secret[];
  /** The secret both sides share, once known (a server with candidates learns it from the proof). */
  #secret: Secret | undefined;
  #peerNonce: Uint8Array | undefined;
  #done = false;

  /**
   * @param options this side's identity and challenge.
   * @throws TypeError when a client is given a list of secrets or an empty list.
   */
  constructor(options: HandshakeOptions) {
    this.#o = options;
    const s = options.secret;
    const many = Array.isArray(s);
    this.#secrets = s === undefined ? [] : many ? s as Secret[] : [s as Secret];
    if (many && (options.role === "client" || this.#secrets.length === 0)) {
      throw new TypeError(
        "only a server may accept a list of secrets, and the list may not be empty",
      );
    }
    this.#secret = many ? undefined : this.#secrets[0];
  }

  /** True once the peer was accepted. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * The secret the peer proved it holds, once done (undefined without
   * authentication): a server with a list learns here which one matched,
   * e.g. to give the connection that token's role.
   */
  get provenSecret(): Secret | undefined {
    return this.#done ? this.#secret : undefined;
  }

  /** The first frame to send. */
  hello(): Uint8Array {
    const o = this.#o;
    return controlFrame([
      1,
      PROTOCOL_VERSION,
      o.fingerprint,
      new Uint8Array(o.nonce),
      this.#secrets.length > 0,
      ...(o.differential === undefined ? [] : [o.differential]),
    ]);
  }

  /**
   * Feeds a control message from the peer.
   * @throws TransportError `handshake_failed`, `fingerprint_mismatch`,
   *   `auth_failed` or `protocol_error`; the connection must close.
   */
  receive(message: ControlMessage): HandshakeStep {
    const o = this.#o;
    if (message[0] === 1) {
      if (this.#peerNonce) {
        throw new TransportError("protocol_error", "a second hello");
      }
      const [, version, fingerprint, nonce, auth, differential] = message;
      if (version !== PROTOCOL_VERSION) {
        throw new TransportError(
          "handshake_failed",
          `peer speaks transport protocol ${version}, this side ${PROTOCOL_VERSION}`,
        );
      }
      if (fingerprint !== o.fingerprint) {
        throw new TransportError(
          "fingerprint_mismatch",
          `peer's message set ${
            fingerprint.slice(0, 12)
          }… differs from this side's ${o.fingerprint.slice(0, 12)}…`,
        );
      }
      if (
        differential !== undefined && o.differential !== undefined &&
        differential !== o.differential
      ) {
        throw new TransportError(
          "handshake_failed",
          `peer's differential encoding (${differential}) differs from this side's (${o.differential}): both must set \`differential\` the same`,
        );
      }
      const authRequired = this.#secrets.length > 0;
      if (auth !== authRequired) {
        throw new TransportError(
          "auth_failed",
          auth
            ? "peer requires a shared secret; this side has none"
            : "this side requires a shared secret; the peer has none",
        );
      }
      this.#peerNonce = new Uint8Array(nonce);
      if (!authRequired) {
        this.#done = true;
        return { send: [], done: true };
      }
      // With candidates, the proof waits until the client's names the secret.
      if (this.#secret === undefined) return { send: [], done: false };
      const proof = this.#mac(this.#secret, o.role, this.#peerNonce, o.nonce);
      return { send: [controlFrame([2, proof])], done: false };
    }
    if (message[0] === 2) {
      if (!this.#peerNonce || this.#secrets.length === 0 || this.#done) {
        throw new TransportError("protocol_error", "an unexpected proof");
      }
      const peerRole: Role = o.role === "client" ? "server" : "client";
      const got = Buffer.from(message[1]);
      const deferred = this.#secret === undefined;
      let matched: Secret | undefined;
      // Every candidate is checked, so the time taken says nothing about which matched.
      for (const secret of deferred ? this.#secrets : [this.#secret!]) {
        const expected = this.#mac(secret, peerRole, o.nonce, this.#peerNonce);
        if (
          got.length === expected.length &&
          timingSafeEqual(got, Buffer.from(expected)) && matched === undefined
        ) matched = secret;
      }
      if (matched === undefined) {
        throw new TransportError(
          "auth_failed",
          "peer's proof of the shared secret is wrong",
        );
      }
      this.#done = true;
      if (!deferred) return { send: [], done: true };
      this.#secret = matched;
      const proof = this.#mac(matched, o.role, this.#peerNonce, o.nonce);
      return { send: [controlFrame([2, proof])], done: true };
    }
    throw new TransportError(
      "protocol_error",
      `control message ${message[0]} during the handshake`,
    );
  }

  #mac(
    secret: Secret,
    role: Role,
    challenge: Uint8Array,
    response: Uint8Array,
  ): Uint8Array<ArrayBuffer> {
    const h = createHmac("sha256", secret);
    h.update(`strata-transport-v${PROTOCOL_VERSION}:${role}`);
    h.update(challenge);
    h.update(response);
    return new Uint8Array(h.digest());
  }
}
