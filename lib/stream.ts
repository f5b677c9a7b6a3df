/**
 * A stream (libnice's NiceStream, one media line in SDP terms): credentials,
 * components and the stream's checklist (RFC 8445 §6.1.2).
 */
import { randomBytes } from 'node:crypto';
import { Checklist } from './checklist.js';
import { Component } from './component.js';
import type { AgentStats } from './stats.js';

/** RFC 8445 §5.3 ice-chars: ALPHA / DIGIT / "+" / "/". */
const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function randomIceString(length: number): string {
  const bytes = randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ICE_CHARS[bytes[i]! & 63];
  return s;
}

export interface Credentials {
  ufrag: string;
  pwd: string;
}

/**
 * Fresh local credentials. RFC 8445 §5.3 asks for at least 24 bits of
 * randomness in the ufrag and 128 in the password: 8 and 24 ice-chars give 48
 * and 144 bits.
 */
export function newCredentials(): Credentials {
  return { ufrag: randomIceString(8), pwd: randomIceString(24) };
}

export type GatheringState = 'new' | 'gathering' | 'complete';

export class Stream {
  readonly id: number;
  local: Credentials;
  /** The credentials before the last ICE restart, accepted until the new generation selects its pair (§9). */
  previousLocal: Credentials | undefined;
  remote: Credentials | undefined;
  /** A local restart is waiting for the remote's new credentials; checks wait too. */
  restartPending = false;
  /** The peer signalled end-of-candidates for the current generation. */
  remoteEndOfCandidates = false;
  /** When the last remote candidate arrived (trickle timeout). */
  lastRemoteCandidateAt = 0;
  readonly components: Map<number, Component>;
  checklist: Checklist;
  readonly #maxPairs: number;
  readonly #trickle: boolean;
  gathering: GatheringState = 'new';
  /** `initial-binding-request-received` fires once per stream. */
  initialRequestSeen = false;
  /** Bumped by the agent for every prflx remote candidate, to give each its own foundation. */
  prflxCounter = 0;

  constructor(id: number, nComponents: number, stats: AgentStats, maxPairs: number, trickle: boolean) {
    this.id = id;
    this.local = newCredentials();
    this.components = new Map();
    for (let c = 1; c <= nComponents; c++) this.components.set(c, new Component(id, c, stats));
    this.#maxPairs = maxPairs;
    this.#trickle = trickle;
    this.checklist = this.#newChecklist();
  }

  /** With trickle, the remote may still send candidates until end-of-candidates (RFC 8838 §8). */
  #newChecklist(): Checklist {
    return new Checklist(this.id, [...this.components.keys()], { maxPairs: this.#maxPairs, remoteGatheringDone: !this.#trickle });
  }

  /** A fresh checklist for a new ICE generation (restart, §9). */
  resetChecklist(): void {
    this.checklist = this.#newChecklist();
    this.remoteEndOfCandidates = false;
  }

  /** Checks can run once the remote credentials of the current generation are known. */
  get canCheck(): boolean {
    return this.remote !== undefined && !this.restartPending;
  }
}
