/**
 * One TURN request in flight (RFC 8489 §6.2) and its timing: what the
 * allocation (lib/turn/allocation.ts) keeps per outstanding Allocate,
 * Refresh, CreatePermission or ChannelBind, and the rule for what is due
 * when its wait runs out — retransmit over UDP (§6.2.1: the RTO doubling,
 * cut to the request's budget), or give up (§6.2.2 over TCP/TLS: one wait).
 * Plain data and pure functions; the allocation sends and answers.
 */
import { TURN_METHOD, encodeTurnRequest, type LongTermAuth, type TurnRequestFields } from '../stun/message.js';
import { METHOD_NAMES, udpWaits } from './codec.js';

export type Purpose = 'allocate' | 'refresh' | 'deallocate' | 'permission' | 'channel';

const METHODS: Record<Purpose, number> = {
  allocate: TURN_METHOD.ALLOCATE,
  refresh: TURN_METHOD.REFRESH,
  deallocate: TURN_METHOD.REFRESH,
  permission: TURN_METHOD.CREATE_PERMISSION,
  channel: TURN_METHOD.CHANNEL_BIND,
};

export interface Transaction {
  /** Transaction id, hex. */ id: string;
  purpose: Purpose;
  method: number;
  /** Permission: the peer IP; channel: the peer's addressKey; else ''. */ subject: string;
  /** Permission or channel: a refresh of one already installed or bound. */ refresh: boolean;
  fields: TurnRequestFields;
  raw: Buffer;
  /** Key the request was authenticated with: the response must verify with it. */ key: Buffer | undefined;
  /** Wait after each transmission (UDP: RTO doubling, cut to the budget; TCP/TLS: one wait). */ waits: number[];
  /** Transmissions so far, and when the next one (or the timeout) is due. */
  sent: number;
  nextAt: number;
  /** No retransmission after `deadline` (first sent + budget), the timeout at it. */
  budget: number;
  deadline: number;
  /** Already retried once after a 438 Stale Nonce. */ staleRetried: boolean;
  /** An error answer dropped for want of integrity, for the timeout's message. */ ignored: string;
}

/** What a new request needs: its id and the clock from the caller, the rest from the allocation. */
export interface NewTransaction {
  tid: Buffer;
  now: number;
  purpose: Purpose;
  subject: string;
  refresh: boolean;
  fields: TurnRequestFields;
  auth: LongTermAuth | undefined;
  udp: boolean;
  rto: number;
  budget: number;
  staleRetried: boolean;
}

/** The request, encoded and sent once (the caller sends `raw`), with its first wait running. */
export function newTransaction(n: NewTransaction): Transaction {
  const method = METHODS[n.purpose];
  const waits = n.udp ? udpWaits(n.rto, n.budget) : [n.budget];
  return {
    id: n.tid.toString('hex'), purpose: n.purpose, method, subject: n.subject, refresh: n.refresh, fields: n.fields,
    raw: encodeTurnRequest(method, n.tid, n.fields, n.auth), key: n.auth?.key,
    waits, sent: 1, nextAt: n.now + waits[0]!, budget: n.budget, deadline: n.now + n.budget,
    staleRetried: n.staleRetried, ignored: '',
  };
}

/**
 * At `now`, with the transaction's wait over: true if it is to be sent again
 * (its next wait started here), false if it has timed out.
 */
export function retransmit(tx: Transaction, now: number): boolean {
  if (tx.sent >= tx.waits.length || now >= tx.deadline) return false;
  // RFC 8489 §6.2.1: retransmit, waiting twice as long each time.
  tx.nextAt = Math.min(now + tx.waits[tx.sent]!, tx.deadline);
  tx.sent++;
  return true;
}

/** Why a timed-out transaction failed, for its TurnError. */
export function timeoutReason(tx: Transaction): string {
  const why = tx.ignored ? ` (ignored an answer without valid MESSAGE-INTEGRITY: ${tx.ignored})` : '';
  return `${METHOD_NAMES[tx.method]}: no response within ${Math.round(tx.budget)} ms${why}`;
}
