/**
 * mDNS candidates (draft-ietf-mmusic-mdns-ice-candidates): a remote
 * `<uuid>.local` host candidate is resolved by multicast DNS and the pair
 * connects. Inside a network namespace the test creates (multicast never
 * reaches the host's interfaces), with an mDNS responder answering for the
 * name as a browser would.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { createNatRig, cleanupStale, netnsAvailable } from './support/netns.js';
import { runPair, firstOf } from '../examples/relay.js';
import { parseCandidate } from '../lib/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER = `${ROOT}dist/examples/peer.js`;
const NAME = '6d3d5e0b-74d2-4f4a-9c6b-4b5d9b7e3f11.local';

/** An mDNS responder for one name, as a browser runs for its obfuscated host candidates. */
const RESPONDER = `
const mdns = require(${JSON.stringify(`${ROOT}node_modules/multicast-dns`)})();
mdns.on('query', (q) => {
  if (!q.questions.some((x) => x.name.toLowerCase() === process.argv[1] && x.type === 'A')) return;
  mdns.respond({ answers: [{ name: process.argv[1], type: 'A', ttl: 120, data: process.argv[2] }] });
  process.stderr.write('answered\\n');
});
process.stdout.write('ready\\n');
`;

t.test('a remote .local candidate resolves by mDNS and the pair connects', { timeout: 120_000 }, async (t) => {
  if (!existsSync(PEER)) throw new Error(`${PEER} is missing: build first`);
  await cleanupStale();
  const av = await netnsAvailable();
  if (!av.ok) throw new Error(`network namespaces are needed: ${av.reason}`);
  const rig = await createNatRig({ natA: 'eim', natB: 'eim' });
  t.teardown(() => rig.destroy());
  // Multicast to 224.0.0.251 leaves by the bridge of the namespace's "public" network.
  await rig.exec(rig.public, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'br0']);
  const a = rig.publicServer;
  const b = rig.publicServer2;
  const responder = rig.spawnIn(rig.public, process.execPath, ['-e', RESPONDER, NAME, b], { stdio: ['ignore', 'pipe', 'pipe'] });
  let answered = false;
  responder.stderr!.on('data', (d: Buffer) => { if (/answered/.test(d.toString())) answered = true; });
  await new Promise<void>((r) => responder.stdout!.once('data', () => r()));
  const common = [PEER, '--count', '100', '--size', '200', '--timeout', '15'];
  const run = await runPair({
    a: { cmd: 'ip', args: ['netns', 'exec', rig.public, process.execPath, ...common, '--role', 'controlling', '--host', a] },
    b: { cmd: 'ip', args: ['netns', 'exec', rig.public, process.execPath, ...common, '--role', 'controlled', '--host', b] },
    timeoutMs: 40_000,
    rewrite: (from, line) => {
      const m = JSON.parse(line) as { type: string; candidates?: string[] };
      if (m.type !== 'description') return line;
      // B's host address goes to A as the mDNS name; A's goes to B as an address nobody has:
      // B can only learn A from A's checks, which need the name resolved.
      if (from === 'b') m.candidates = m.candidates!.map((c) => c.replace(` ${b} `, ` ${NAME} `));
      else m.candidates = m.candidates!.map((c) => c.replace(` ${a} `, ' 203.0.113.99 '));
      return JSON.stringify(m);
    },
  });
  responder.kill();
  const diag = { a: run.a.stderr.slice(-1500), b: run.b.stderr.slice(-1500) };
  t.ok(answered, 'the responder was asked and answered', diag);
  const connected = firstOf(run.a, 'connected');
  t.ok(connected, 'A connected', diag);
  const remote = parseCandidate(String(connected?.remote));
  t.match(remote, { type: 'host', address: b }, 'A\'s selected remote is the resolved host candidate');
  t.ok(Number(firstOf(run.a, 'done')?.echoed) >= 99, 'data echoed', diag);
});

t.test('with an injected resolver: a name that resolves is used; one that does not is reported; end-of-candidates waits for them', async (t) => {
  const { SimNetwork } = await import('../lib/sim/index.js');
  const { Agent } = await import('../lib/index.js');
  const net = new SimNetwork({ seed: 4, delay: 5 });
  const ha = net.addHost('198.51.100.2');
  const hb = net.addHost('198.51.100.3');
  const resolver = {
    // Answers late (on virtual time), as a real responder would.
    resolve: (name: string) => new Promise<string>((resolve, reject) => net.after(300, () => (name.startsWith('good') ? resolve('198.51.100.3') : reject(new Error('no answer'))))),
    close: async () => {},
  };
  const a = new Agent({ network: ha.network, controllingMode: true, mdns: resolver });
  const b = new Agent({ network: hb.network });
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  let gathered = 0;
  void a.gatherCandidates(sa).then(() => gathered++);
  void b.gatherCandidates(sb).then(() => gathered++);
  await net.run({ until: () => gathered === 2 });
  a.setRemoteCredentials(sa, b.getLocalCredentials(sb).ufrag, b.getLocalCredentials(sb).pwd);
  b.setRemoteCredentials(sb, a.getLocalCredentials(sa).ufrag, a.getLocalCredentials(sa).pwd);
  const skipped: string[] = [];
  a.on('remote-candidate-skipped', (_s, _c, reason) => skipped.push(reason));
  const host = b.getLocalCandidates(sb, 1)[0]!;
  t.equal(a.setRemoteCandidates(sa, 1, [
    { ...host, address: 'good-6d3d5e0b.local' },
    { ...host, address: 'bad-1f3a2b4c.local', port: host.port + 1, foundation: '9' },
  ]), 0, 'nothing added yet: both are being resolved');
  a.peerCandidateGatheringDone(sa);
  t.not(a.getComponentState(sa, 1), 'failed', 'end-of-candidates waits for the resolutions under way');
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  await net.run({ until: () => a.getComponentState(sa, 1) === 'ready' && skipped.length > 0, timeout: 5000 });
  t.equal(a.getSelectedPair(sa, 1)!.remote.address, '198.51.100.3', 'connected to the resolved address');
  t.ok(a.getRemoteCandidates(sa, 1).some((c) => c.address === '198.51.100.3' && c.type === 'host'), 'the resolved candidate is in, as host');
  t.match(skipped, [/mDNS name bad-1f3a2b4c\.local did not resolve: no answer/], 'the other is reported with the reason');
  let closed = false;
  void Promise.all([a.close(), b.close()]).then(() => { closed = true; });
  await net.run({ until: () => closed });
});
