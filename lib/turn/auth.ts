/**
 * The long-term credential mechanism as a TURN client uses it (RFC 8489
 * §9.2, RFC 8656 §7.1): plain data (username, password, and once challenged
 * the realm, nonce and key), no I/O.
 *
 * - The first Allocate goes without credentials; the 401 answer carries REALM
 *   and NONCE (§9.2.3), after which every request carries USERNAME, REALM,
 *   NONCE and a MESSAGE-INTEGRITY keyed with MD5(username:realm:password)
 *   (§9.2.2, §9.2.4).
 * - A 438 Stale Nonce carries a fresh NONCE (and possibly a new REALM) to
 *   retry with (§9.2.5).
 */
import {
  getErrorCode,
  getNonce,
  getRealm,
  longTermKey,
  verifyIntegrity,
  type DecodedStun,
  type LongTermAuth,
} from '../stun/message.js';

export class LongTermCredentials {
  readonly username: string;
  readonly password: string;
  realm: string | undefined = undefined;
  nonce: string | undefined = undefined;
  /** longTermKey(username, realm, password), once the realm is known. */
  key: Buffer | undefined = undefined;

  constructor(username: string, password: string) {
    this.username = username;
    this.password = password;
  }

  /** What a request carries (RFC 8489 §9.2.4); undefined before the challenge. */
  get auth(): LongTermAuth | undefined {
    if (this.realm === undefined || this.nonce === undefined || this.key === undefined) return undefined;
    return { username: this.username, realm: this.realm, nonce: this.nonce, key: this.key };
  }

  /** Takes REALM and NONCE from a 401 challenge (RFC 8489 §9.2.3). False when either is missing. */
  challenge(res: DecodedStun): boolean {
    const realm = getRealm(res);
    const nonce = getNonce(res);
    if (realm === undefined || nonce === undefined) return false;
    this.realm = realm;
    this.nonce = nonce;
    this.key = longTermKey(this.username, realm, this.password);
    return true;
  }

  /**
   * Takes the new NONCE (and REALM, if it changed, with the key that goes with
   * it) from a 438 Stale Nonce answer (RFC 8489 §9.2.5). False when there is
   * nothing to retry with.
   */
  staleNonce(res: DecodedStun): boolean {
    const nonce = getNonce(res);
    if (nonce === undefined || this.key === undefined) return false;
    const realm = getRealm(res) ?? this.realm!;
    if (realm !== this.realm) {
      this.realm = realm;
      this.key = longTermKey(this.username, realm, this.password);
    }
    this.nonce = nonce;
    return true;
  }
}

/**
 * Whether a response may end the transaction of a request sent with `key`
 * (undefined: the request was not authenticated, any answer will do).
 *
 * RFC 8489 §9.2.5: a success response to an authenticated request must carry
 * a MESSAGE-INTEGRITY that verifies with our key. 401 and 438 answers cannot
 * carry one (the server no longer accepts our key or nonce), so they are
 * taken as they are. Any other error response is generated after the server
 * has authenticated the request and so carries MESSAGE-INTEGRITY (§9.2.4):
 * over UDP, where anyone on the path can forge a datagram from the server,
 * only one that verifies is accepted; over TCP/TLS the connection itself is
 * trusted and an error is accepted unless its MESSAGE-INTEGRITY is present
 * and wrong. A response that is not accepted is dropped and the transaction
 * goes on (retransmitting over UDP) until the real answer or its timeout.
 */
export function responseAcceptable(m: DecodedStun, key: Buffer | undefined, trustedLink: boolean): boolean {
  if (key === undefined) return true;
  const integrity = verifyIntegrity(m.raw, key);
  if (m.cls === 'success') return integrity === 'ok';
  const code = getErrorCode(m)?.code;
  if (code === 401 || code === 438) return true;
  return trustedLink ? integrity !== 'bad' : integrity === 'ok';
}
