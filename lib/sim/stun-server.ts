/**
 * A STUN server of the in-memory network (RFC 8489, the Binding method only,
 * as an ICE agent uses it to learn its server-reflexive address, RFC 8445
 * §5.1.1.2): every Binding request is answered with XOR-MAPPED-ADDRESS, the
 * source of the request as the server sees it (so after every NAT on the
 * way), and FINGERPRINT. Anything else, and requests with a bad FINGERPRINT,
 * are ignored. `silent` drops everything, for tests of timeouts.
 */
import type { LinkOptions } from './types.js';
import { acceptableRequest, bindingResponse, type ServerPort } from './server-port.js';
import type { SimHost } from './host.js';
import { formatAddress, type TransportAddress } from '../transport/address.js';

export interface SimStunServerOptions extends Partial<LinkOptions> {
  /** SOFTWARE attribute to put in responses (RFC 8489 §14.14); none by default. */
  software?: string;
}

export interface SimStunServerStats {
  /** Binding requests answered. */
  requests: number;
  /** Datagrams dropped: not a Binding request, bad FINGERPRINT, or while silent. */
  ignored: number;
}

export class SimStunServer {
  /** The server's transport address. */
  readonly address: TransportAddress;
  /** The host the server runs on (link options, other servers). */
  readonly host: SimHost;
  readonly stats: SimStunServerStats = { requests: 0, ignored: 0 };
  /** While true, every datagram is dropped unanswered. */
  silent = false;

  /** The server as an ICE server URL (RFC 7064), e.g. for an Agent's STUN option. */
  get url(): string {
    return `stun:${formatAddress(this.address.address, this.address.port)}`;
  }

  /** @internal Created by SimNetwork.addStunServer. */
  constructor(port: ServerPort, opts: SimStunServerOptions) {
    if (port.binding !== undefined) throw new Error(`a STUN server already answers on ${port.socket.local.address}:${port.socket.local.port}`);
    this.address = port.socket.local;
    this.host = port.host;
    const software = opts.software;
    port.binding = (_data, from, msg) => {
      if (this.silent || msg === undefined || !acceptableRequest(msg)) {
        this.stats.ignored++;
        return true;
      }
      this.stats.requests++;
      port.send(bindingResponse(msg, from, software), from);
      return true;
    };
    // Alone on its port, the STUN server also sees (and ignores) everything that is not a Binding request.
    if (port.turn === undefined) {
      port.turn = () => {
        this.stats.ignored++;
        return true;
      };
    }
  }
}
