/**
 * STUN cost: building and verifying one connectivity check (USERNAME,
 * PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT),
 * and incoming checks answered per second by one agent.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { Agent } from '../lib/index.js';
import {
  encodeBindingRequest, decodeStun, verifyIntegrity, verifyFingerprint, newTransactionId, getUsername, getPriority,
} from '../lib/stun/message.js';
import { figure, type Figure, withTimeout } from './stats.js';

const FIELDS = {
  username: 'abcdefgh:ijklmnop',
  password: 'abcdefghijklmnopqrstuvwx',
  priority: 1853817087,
  controlling: true,
  tieBreaker: 0x0123456789abcdefn,
  useCandidate: true,
};

function perOp(n: number, fn: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - t0) * 1000) / n;
}

export interface StunResult {
  buildUs: Figure;
  verifyUs: Figure;
  answeredPerSec: Figure;
}

export async function benchStun(repeats: number): Promise<StunResult> {
  const build: number[] = [];
  const verify: number[] = [];
  const sample = encodeBindingRequest({ ...FIELDS, transactionId: newTransactionId() });
  perOp(2000, () => encodeBindingRequest({ ...FIELDS, transactionId: newTransactionId() }));
  for (let r = 0; r < repeats; r++) {
    build.push(perOp(5000, () => encodeBindingRequest({ ...FIELDS, transactionId: newTransactionId() })));
    // What the agent does with an incoming check before answering it.
    verify.push(perOp(5000, () => {
      const m = decodeStun(sample)!;
      verifyFingerprint(sample);
      getUsername(m);
      verifyIntegrity(sample, FIELDS.password);
      getPriority(m);
    }));
  }
  const answered: number[] = [];
  for (let r = 0; r < repeats; r++) answered.push(await answerRate(5000));
  return { buildUs: figure(build, 'µs'), verifyUs: figure(verify, 'µs'), answeredPerSec: figure(answered, 'check/s') };
}

/** One agent answers `n` authenticated checks from a raw socket, 32 in flight at a time. */
async function answerRate(n: number): Promise<number> {
  const a = new Agent({ localAddresses: ['127.0.0.1'], controllingMode: true });
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  try {
    const s = a.addStream(1);
    await a.gatherCandidates(s);
    const { ufrag, pwd } = a.getLocalCredentials(s);
    const port = a.getLocalCandidates(s, 1)[0]!.port;
    const reqs = Array.from({ length: 64 }, () => encodeBindingRequest({
      ...FIELDS, username: `${ufrag}:peer`, password: pwd, controlling: false, useCandidate: false, transactionId: newTransactionId(),
    }));
    let sent = 0;
    let got = 0;
    const t0 = performance.now();
    await withTimeout(new Promise<void>((resolve) => {
      const one = () => sock.send(reqs[sent++ % reqs.length]!, port, '127.0.0.1');
      sock.on('message', () => {
        if (++got === n) resolve();
        else if (sent < n) one();
      });
      for (let i = 0; i < 32; i++) one();
    }), 30000, 'answer rate');
    return n / ((performance.now() - t0) / 1000);
  } finally {
    sock.close();
    await a.close();
  }
}
