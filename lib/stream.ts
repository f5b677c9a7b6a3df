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
  remote: Credentials | undefined;
  readonly components: Map<number, Component>;
  readonly checklist: Checklist;
  gathering: GatheringState = 'new';
  /** `initial-binding-request-received` fires once per stream. */
  initialRequestSeen = false;
  /** Bumped by the agent for every prflx remote candidate, to give each its own foundation. */
  prflxCounter = 0;

  constructor(id: number, nComponents: number, stats: AgentStats, maxPairs: number) {
    this.id = id;
    this.local = newCredentials();
    this.components = new Map();
    for (let c = 1; c <= nComponents; c++) this.components.set(c, new Component(id, c, stats));
    this.checklist = new Checklist(id, [...this.components.keys()], { maxPairs });
  }

  /** Checks can run once the remote credentials are known. */
  get canCheck(): boolean {
    return this.remote !== undefined;
  }
}
