/**
 * Proves the namespace NAT rig (spec/support/netns.ts) behaves as advertised, so ICE tests built on it can trust it.
 * Needs root: if namespaces cannot be created the tests FAIL with the reason (they are never skipped).
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cleanupStale, createNatRig, netnsAvailable, run, type NatRig, type NatRigOptions } from './support/netns.js';
import { UdpProbe, type Endpoint, type ProbeMessage } from './support/udp-probe.js';

let availability: Awaited<ReturnType<typeof netnsAvailable>> | undefined;

t.before(async () => {
  await cleanupStale();
  availability = await netnsAvailable();
});

/** Throws (failing the test, never skipping it) if namespaces are unavailable, with the reason. */
function requireNetns(): void {
  if (!availability?.ok) throw new Error(`network namespaces unavailable: ${availability?.reason ?? 'not checked'}`);
}

/** A rig torn down with the test, whatever happens. */
async function newRig(t: Test, opts: NatRigOptions): Promise<NatRig> {
  requireNetns();
  const rig = await createNatRig(opts);
  t.teardown(() => rig.destroy());
  return rig;
}

/** Polls `fn` every 20 ms until it returns true; rejects with `what` after `ms`. */
async function until(fn: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A "what's my address" reflector in `public` on three destinations: two addresses, and two ports on one of them. */
function startReflector(rig: NatRig): Promise<UdpProbe> {
  return UdpProbe.start(rig, rig.public, reflectorTargets(rig), { reflect: true });
}
const reflectorTargets = (rig: NatRig): Endpoint[] => [
  { address: rig.publicServer, port: 40000 },
  { address: rig.publicServer2, port: 40000 },
  { address: rig.publicServer, port: 40001 },
];

const same = (a: Endpoint, b: Endpoint) => a.address === b.address && a.port === b.port;
const key = (e: Endpoint) => `${e.address}:${e.port}`;

/** Reads one counter of the `IpExt:` block of /proc/net/netstat inside a namespace (e.g. InNoRoutes). */
async function ipExtCounter(rig: NatRig, ns: string, name: string): Promise<number> {
  const lines = (await rig.exec(ns, 'cat', ['/proc/net/netstat'])).split('\n').filter((l) => l.startsWith('IpExt:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  return Number(values[names.indexOf(name)]);
}

t.test('namespaces, veths, a bridge and iptables NAT are available (fails, never skips, if not)', async (t) => {
  t.same(availability, { ok: true }, availability?.ok ? 'available' : availability?.reason ?? 'not checked');
});

t.test('eim NATs on both sides', async (t) => {
  const rig = await newRig(t, { natA: 'eim', natB: 'eim' });
  const targets = reflectorTargets(rig);
  const [, a, b] = await Promise.all([startReflector(rig), UdpProbe.start(rig, rig.hostA), UdpProbe.start(rig, rig.hostB)]);

  t.test('one port-preserving mapping, whatever the destination', async (t) => {
    for (const [probe, outside] of [[a, rig.natAOutside], [b, rig.natBOutside]] as const) {
      const seen: Endpoint[] = [];
      for (const target of targets) seen.push(await probe.reflexive(target));
      const expected = { address: outside, port: probe.local[0]!.port };
      t.same(seen, targets.map(() => expected), `${targets.map(key).join(', ')} all see ${key(expected)} (source port preserved)`);
    }
  });

  t.test('hole punching: each side sends to the other\'s server-reflexive address, and datagrams get through', async (t) => {
    const [mA, mB] = [await a.reflexive(targets[0]!), await b.reflexive(targets[0]!)];
    // The first datagram reaching a NAT before its own host has sent towards the sender is dropped; later ones
    // match the conntrack entry the host's own datagrams created.
    const timer = setInterval(() => { a.send(mB, 'from A'); b.send(mA, 'from B'); }, 50);
    t.teardown(() => clearInterval(timer));
    const [atA, atB] = await Promise.all([
      a.waitForMessage((m) => m.data.toString() === 'from B', 3000, 'datagram from B'),
      b.waitForMessage((m) => m.data.toString() === 'from A', 3000, 'datagram from A'),
    ]);
    clearInterval(timer);
    t.same(atA.from, mB, `A hears B from B's server-reflexive address ${key(mB)}`);
    t.same(atB.from, mA, `B hears A from A's server-reflexive address ${key(mA)}`);
  });

  t.test('a host cannot reach the other LAN directly', async (t) => {
    await t.rejects(rig.exec(rig.natA, 'ip', ['route', 'get', rig.hostBAddress, 'from', rig.hostAAddress, 'iif', 'lan']),
      /unreachable/i, 'NAT A has no route to 198.51.100.64/26');
    const lan = await UdpProbe.start(rig, rig.hostB, [{ address: rig.hostBAddress, port: 5000 }]);
    const before = await ipExtCounter(rig, rig.natA, 'InNoRoutes');
    for (let i = 0; i < 5; i++) a.send({ address: rig.hostBAddress, port: 5000 }, `direct ${i}`);
    // Deterministic end point: NAT A counted all five as "no route" (and answered ICMP net unreachable).
    await until(async () => (await ipExtCounter(rig, rig.natA, 'InNoRoutes')) >= before + 5, 3000, 'NAT A to drop 5 datagrams for want of a route');
    await lan.sync();
    t.same(lan.messages, [], 'host B received nothing');
  });

  t.test('coturn runs on the public network and sees each host as its NAT mapping', async (t) => {
    const turn = await rig.startTurnServer();
    t.same([turn.address, turn.port], ['203.0.113.10', 3478]);
    for (const [probe, outside] of [[a, rig.natAOutside], [b, rig.natBOutside]] as const) {
      const mapped = xorMappedAddress((await stunBinding(probe, { address: turn.address, port: turn.port })).data);
      t.same(mapped, { address: outside, port: probe.local[0]!.port }, `coturn sees ${outside}, source port preserved`);
    }
  });
});

t.test('symmetric NATs on both sides', async (t) => {
  const rig = await newRig(t, { natA: 'symmetric', natB: 'symmetric' });
  const targets = reflectorTargets(rig);
  const [, a, b] = await Promise.all([startReflector(rig), UdpProbe.start(rig, rig.hostA), UdpProbe.start(rig, rig.hostB)]);

  t.test('a different external port for every destination', async (t) => {
    for (const [probe, outside] of [[a, rig.natAOutside], [b, rig.natBOutside]] as const) {
      const seen: Endpoint[] = [];
      for (const target of targets) seen.push(await probe.reflexive(target));
      t.ok(seen.every((e) => e.address === outside), `translated to ${outside}`);
      // (--random-fully draws from 1024-65535: two of three destinations colliding has odds of about 1 in 20 000.)
      t.equal(new Set(seen.map((e) => e.port)).size, targets.length, `distinct ports ${seen.map((e) => e.port).join(', ')} (local ${probe.local[0]!.port})`);
      t.same(await probe.reflexive(targets[0]!), seen[0], 'asking the first destination again: same mapping');
    }
  });

  t.test('hole punching fails', async (t) => {
    const [mA, mB] = [await a.reflexive(targets[0]!), await b.reflexive(targets[0]!)];
    const isPeer = (m: ProbeMessage) => !targets.some((s) => same(s, m.from));
    const [dropsA, dropsB] = [await rig.droppedInbound(rig.natA), await rig.droppedInbound(rig.natB)];
    const rounds = 10;
    for (let i = 0; i < rounds; i++) { a.send(mB, 'from A'); b.send(mA, 'from B'); }
    // Deterministic end point: every datagram has been dropped by the far NAT's "unsolicited inbound" rule.
    await until(async () => (await rig.droppedInbound(rig.natB)) >= dropsB + rounds && (await rig.droppedInbound(rig.natA)) >= dropsA + rounds,
      3000, `both NATs to drop ${rounds} unsolicited datagrams`);
    await Promise.all([a.sync(), b.sync()]);
    t.same(a.messages.filter(isPeer), [], 'A heard nothing from B');
    t.same(b.messages.filter(isPeer), [], 'B heard nothing from A');
  });
});

t.test('destroy() kills processes, removes every namespace, and is idempotent; cleanupStale spares live rigs', async (t) => {
  requireNetns();
  const rig = await createNatRig({ natA: 'eim', natB: 'symmetric' });
  t.teardown(() => rig.destroy()); // (a no-op once the test has destroyed it)
  const other = await newRig(t, { natA: 'symmetric', natB: 'eim' });
  const rules = await Promise.all([rig.natA, rig.natB].map((ns) => rig.exec(ns, 'iptables-save', ['-t', 'nat'])));
  t.match(rules[0], /-A POSTROUTING -o wan -j MASQUERADE\n/, 'natA: plain MASQUERADE');
  t.match(rules[1], /-A POSTROUTING -o wan -j MASQUERADE --random-fully\n/, 'natB: MASQUERADE --random-fully');
  const probe = await UdpProbe.start(rig, rig.hostA);
  const exited = new Promise<void>((resolve) => probe.child.once('exit', () => resolve()));

  // A namespace from a "previous run" whose creating process is gone.
  const deadPid = await new Promise<number>((resolve, reject) => {
    const c = execFile(process.execPath, ['-e', '']);
    c.once('error', reject);
    c.once('exit', () => resolve(c.pid!));
  });
  const stale = `iceagent-${deadPid}-dead-pub`;
  await run('ip', ['netns', 'add', stale]);
  t.teardown(() => run('ip', ['netns', 'del', stale]).catch(() => {}));
  t.same(await cleanupStale(), [stale], 'cleanupStale deletes only the dead process\'s namespace');

  const list = async () => (await run('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  t.ok(rig.namespaces.every((ns) => ns.startsWith('iceagent-')), 'every namespace is called iceagent-*');
  const beforeDestroy = await list();
  t.same(rig.namespaces.filter((ns) => !beforeDestroy.includes(ns)), [], 'all five namespaces exist before destroy()');

  await Promise.all([rig.destroy(), rig.destroy()]);
  await rig.destroy();
  await exited;
  const after = await list();
  t.same(after.filter((ns) => ns.startsWith(rig.id)), [], 'no namespace of the destroyed rig is left');
  t.same(after.filter((ns) => ns === stale), [], 'the stale namespace is gone');
  t.same(other.namespaces.filter((ns) => !after.includes(ns)), [], 'the other live rig is untouched');
  const rootLinks = (await run('ip', ['-o', 'link'])).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]);
  t.same(rootLinks.filter((n) => n && ['br0', 'wan', 'lan', 'lan0', 'port-a', 'port-b'].includes(n)), [], 'the host namespace never had any rig interface');
  await t.rejects(rig.exec(rig.hostA, 'true'), /failed/, 'exec into a destroyed rig fails loudly');
});

/** Sends a STUN Binding request (resent every 100 ms) and resolves with the server's response. */
async function stunBinding(probe: UdpProbe, server: Endpoint): Promise<ProbeMessage> {
  const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12)]);
  const isResponse = (m: ProbeMessage) => same(m.from, server) && m.data.length >= 20 && m.data.subarray(8, 20).equals(request.subarray(8, 20));
  const reply = probe.waitForMessage(isResponse, 3000, `STUN Binding response from ${key(server)}`);
  const timer = setInterval(() => probe.send(server, request), 100);
  probe.send(server, request);
  return reply.finally(() => clearInterval(timer));
}

/** Parses XOR-MAPPED-ADDRESS (IPv4) out of a STUN message. */
function xorMappedAddress(msg: Buffer): Endpoint | undefined {
  for (let off = 20; off + 4 <= msg.length;) {
    const type = msg.readUInt16BE(off);
    const len = msg.readUInt16BE(off + 2);
    if (type === 0x0020 && msg[off + 5] === 0x01) {
      const port = msg.readUInt16BE(off + 6) ^ 0x2112;
      const addr = [0, 1, 2, 3].map((i) => msg[off + 8 + i]! ^ [0x21, 0x12, 0xa4, 0x42][i]!).join('.');
      return { address: addr, port };
    }
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return undefined;
}
