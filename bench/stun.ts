/**
 * STUN cost: building and verifying one connectivity check (USERNAME,
 * PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT),
 * and incoming checks answered per second by one agent.
 *
 * Each cost is measured three ways in the same repeats: the codec's direct
 * encoder, a per-pair BindingRequestTemplate, and, as the reference, the
 * `stun` package path the codec used before (kept here, not in lib/).
 */
import dgram from 'node:dgram';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import stun from 'stun';
import { Agent } from '../lib/index.js';
import { ATTR, BINDING_REQUEST, decodeStun, findAttribute, verifyIntegrity, verifyFingerprint, newTransactionId, getUsername, getPriority } from '../lib/stun/message.js';
import { BindingRequestTemplate, encodeBindingRequest, type BindingRequestFields } from '../lib/stun/binding.js';
import { figure, ratio, type Figure, withTimeout } from './stats.js';

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

/** The old encodeBindingRequest, through the `stun` package: the reference for the build figures. */
function stunPackageRequest(f: BindingRequestFields): Buffer {
  const m = stun.createMessage(BINDING_REQUEST, f.transactionId);
  m.addUsername(f.username);
  m.addAttribute(ATTR.PRIORITY, f.priority >>> 0);
  const tieBreaker = Buffer.allocUnsafe(8);
  tieBreaker.writeBigUInt64BE(f.tieBreaker);
  if (f.controlling) m.addIceControlling(tieBreaker);
  else m.addIceControlled(tieBreaker);
  if (f.useCandidate) m.addUseCandidate();
  m.addMessageIntegrity(f.password);
  m.addFingerprint();
  return m.toBuffer();
}

/** The old verifyIntegrity: node:crypto createHmac over a copied header with the adjusted length (RFC 8489 §14.5). */
function createHmacIntegrity(buf: Buffer, key: string): boolean {
  const off = findAttribute(buf, ATTR.MESSAGE_INTEGRITY);
  const header = Buffer.from(buf.subarray(0, 20));
  header.writeUInt16BE(off + 24 - 20, 2);
  const mac = createHmac('sha1', key).update(header).update(buf.subarray(20, off)).digest();
  return timingSafeEqual(mac, buf.subarray(off + 4, off + 24));
}

/** The fields of a check as lib/core/check.ts passes them: a fresh object literal per check. */
const fields = (transactionId: Buffer): BindingRequestFields => ({
  transactionId, username: FIELDS.username, password: FIELDS.password, priority: FIELDS.priority,
  controlling: FIELDS.controlling, tieBreaker: FIELDS.tieBreaker, useCandidate: FIELDS.useCandidate,
});

export interface StunResult {
  /** encodeBindingRequest, with a new transaction id. */
  buildUs: Figure;
  /** BindingRequestTemplate.build, with a new transaction id. */
  templateBuildUs: Figure;
  /** The `stun` package, with a new transaction id. */
  stunPackageBuildUs: Figure;
  /** What the agent does with an incoming check before answering: decode, FINGERPRINT, USERNAME, MESSAGE-INTEGRITY, PRIORITY. */
  verifyUs: Figure;
  /** The same through stun.decode and createHmac. */
  stunPackageVerifyUs: Figure;
  /** MESSAGE-INTEGRITY alone: verifyIntegrity, and createHmac over the same bytes. */
  integrityUs: Figure;
  createHmacIntegrityUs: Figure;
  /** Medians: reference / ours (how many times faster). */
  speedup: { build?: number; template?: number; verify?: number; integrity?: number };
  answeredPerSec: Figure;
}

export async function benchStun(repeats: number): Promise<StunResult> {
  const rows = {
    build: [] as number[], template: [] as number[], stunBuild: [] as number[],
    verify: [] as number[], stunVerify: [] as number[], integrity: [] as number[], createHmac: [] as number[],
  };
  const template = new BindingRequestTemplate(FIELDS);
  const sample = encodeBindingRequest(fields(newTransactionId()));
  const ops: [number[], () => unknown][] = [
    [rows.build, () => encodeBindingRequest(fields(newTransactionId()))],
    [rows.template, () => template.build(newTransactionId())],
    [rows.stunBuild, () => stunPackageRequest(fields(newTransactionId()))],
    [rows.verify, () => {
      const m = decodeStun(sample)!;
      verifyFingerprint(sample);
      getUsername(m);
      verifyIntegrity(sample, FIELDS.password);
      getPriority(m);
    }],
    [rows.stunVerify, () => {
      // The old decodeStun: the same framing and TLV walk, then stun.decode of every attribute.
      const m = decodeStun(sample)!;
      stun.decode(sample);
      verifyFingerprint(sample);
      getUsername(m);
      createHmacIntegrity(sample, FIELDS.password);
      getPriority(m);
    }],
    [rows.integrity, () => verifyIntegrity(sample, FIELDS.password)],
    [rows.createHmac, () => createHmacIntegrity(sample, FIELDS.password)],
  ];
  for (const [, op] of ops) perOp(2000, op);
  // Interleaved, so that every row sees the same machine state in each repeat.
  for (let r = 0; r < repeats; r++) for (const [samples, op] of ops) samples.push(perOp(5000, op));
  const us = (s: number[]) => figure(s, 'µs');
  const f = {
    buildUs: us(rows.build), templateBuildUs: us(rows.template), stunPackageBuildUs: us(rows.stunBuild),
    verifyUs: us(rows.verify), stunPackageVerifyUs: us(rows.stunVerify),
    integrityUs: us(rows.integrity), createHmacIntegrityUs: us(rows.createHmac),
  };
  const answered: number[] = [];
  for (let r = 0; r < repeats; r++) answered.push(await answerRate(5000));
  return {
    ...f,
    speedup: {
      build: ratio(f.stunPackageBuildUs, f.buildUs),
      template: ratio(f.stunPackageBuildUs, f.templateBuildUs),
      verify: ratio(f.stunPackageVerifyUs, f.verifyUs),
      integrity: ratio(f.createHmacIntegrityUs, f.integrityUs),
    },
    answeredPerSec: figure(answered, 'check/s'),
  };
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
