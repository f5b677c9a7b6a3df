/**
 * Server-reflexive candidates (RFC 8445 §5.1.1.2): a STUN Binding request
 * (RFC 8489) from a host socket to a STUN server; the XOR-MAPPED-ADDRESS of
 * the answer is the socket's address as the server saw it. The request is a
 * normal RFC 8489 transaction (RTO, retransmissions) bounded by the server's
 * own timeout, so one silent server never holds up gathering.
 */
import stun from 'stun';
import type { RemoteAddress as RemoteInfo } from '../transport/transport.js';
import type { UdpTransport } from '../transport/udp.js';
import type { Scheduler } from '../scheduler.js';
import { Transaction } from '../stun/transaction.js';
import {
  BINDING_REQUEST, type DecodedStun, getErrorCode, getXorMappedAddress, newTransactionId,
} from '../stun/message.js';

export interface StunResponseRouter {
  /** Routes responses with this transaction id (hex) to `handler` until removed. */
  register(key: string, handler: (m: DecodedStun, rinfo: RemoteInfo) => void): void;
  unregister(key: string): void;
}

export type BindingOutcome =
  | { ok: true; mapped: { address: string; port: number } }
  | { ok: false; reason: string; code?: number };

/**
 * Retransmission waits that fit inside `timeoutMs`: RTO starting at
 * min(500 ms, timeout/8) and doubling (RFC 8489 §6.2.1), the last wait
 * stretched so the total is exactly the timeout.
 */
export function boundedWaits(timeoutMs: number): number[] {
  const waits: number[] = [];
  let rto = Math.max(1, Math.min(500, Math.floor(timeoutMs / 8)));
  let total = 0;
  while (total + rto * 2 <= timeoutMs && waits.length < 7) {
    waits.push(rto);
    total += rto;
    rto *= 2;
  }
  waits.push(timeoutMs - total);
  return waits;
}

export function stunBinding(
  transport: UdpTransport,
  server: { address: string; port: number },
  scheduler: Scheduler,
  router: StunResponseRouter,
  timeoutMs: number,
): Promise<BindingOutcome> {
  return new Promise((resolve) => {
    const tid = newTransactionId();
    const key = tid.toString('hex');
    const buf = stun.createMessage(BINDING_REQUEST, tid);
    buf.addFingerprint();
    const bytes = buf.toBuffer();
    const done = (o: BindingOutcome) => {
      tx.finish();
      router.unregister(key);
      resolve(o);
    };
    const tx = new Transaction(key, boundedWaits(timeoutMs), scheduler, {
      transmit: () => transport.send(bytes, server.port, server.address),
      timeout: () => {
        router.unregister(key);
        resolve({ ok: false, reason: `no response within ${timeoutMs} ms` });
      },
    });
    router.register(key, (m, rinfo) => {
      // Only the server we asked may answer (RFC 8489 §6.3.1 matches by transaction id; the source check stops spoofing).
      if (rinfo.address !== server.address || rinfo.port !== server.port) return;
      if (m.cls === 'error') {
        const e = getErrorCode(m);
        done({ ok: false, reason: e ? `${e.code} ${e.reason}` : 'error response', ...(e ? { code: e.code } : {}) });
        return;
      }
      const mapped = getXorMappedAddress(m);
      if (!mapped) done({ ok: false, reason: 'response without XOR-MAPPED-ADDRESS' });
      else done({ ok: true, mapped });
    });
    tx.start();
  });
}
