/** Renomination (draft-thatcher-ice-renomination): the controlling side moves to another pair, the controlled side follows, no loss. */
import t from 'tap';
import { Agent } from '../lib/index.js';
import { SimNetwork } from '../lib/sim/index.js';
import { ATTR, findAttribute } from '../lib/stun/message.js';

async function within<T>(net: SimNetwork, p: Promise<T>): Promise<T> {
  let done = false;
  void p.then(() => { done = true; }, () => { done = true; });
  await net.run({ until: () => done, timeout: 30_000 });
  return p;
}

t.test('the controlling side renominates; the controlled side follows the latest nomination; data moves with no loss', async (t) => {
  const net = new SimNetwork({ seed: 9, delay: 5 });
  // A has two addresses: two pairs can succeed.
  const ha = net.addHost(['198.51.100.2', '198.51.100.12']);
  const hb = net.addHost('198.51.100.3');
  const a = new Agent({ network: ha.network, controllingMode: true, renomination: true });
  const b = new Agent({ network: hb.network, renomination: true });
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await within(net, Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]));
  a.setRemoteCredentials(sa, b.getLocalCredentials(sb).ufrag, b.getLocalCredentials(sb).pwd);
  b.setRemoteCredentials(sb, a.getLocalCredentials(sa).ufrag, a.getLocalCredentials(sa).pwd);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  await within(net, Promise.all([a.connect(sa), b.connect(sb)]));
  // Let the other pair succeed too (B's checks on it).
  await net.run({ until: () => a.getPairs(sa).filter((p) => p.valid).length === 2, timeout: 5000 });
  const first = a.getSelectedPair(sa, 1)!;
  const other = a.getPairs(sa).find((p) => p.valid && p.local.address !== first.local.address)!;
  const nominations: number[] = [];
  net.observe((e) => {
    if (e.kind !== 'send' || e.data.length < 20 || e.data[0] !== 0) return;
    const off = findAttribute(e.data, ATTR.NOMINATION);
    if (off >= 0) nominations.push(e.data.readUInt32BE(off + 4) & 0xffffff);
  });
  const got = new Set<number>();
  b.attachRecv(sb, 1, (d) => got.add(d.readUInt16BE(1)));
  let n = 0;
  const send = () => {
    const d = Buffer.alloc(3);
    d[0] = 0x80;
    d.writeUInt16BE(n++, 1);
    a.send(sa, 1, d);
  };
  for (let i = 0; i < 20; i++) { send(); await net.run({ for: 5 }); }
  const followed = new Promise<string>((r) => b.once('new-selected-pair', (_s, _c, _l, remote) => r(remote.address)));
  t.ok(a.renominate(sa, 1, { local: other.local, remote: other.remote }), 'renominate() accepted');
  for (let i = 0; i < 40; i++) { send(); await net.run({ for: 5 }); }
  t.equal(await within(net, followed), other.local.address, 'B follows: its selected pair is now the renominated one');
  t.equal(a.getSelectedPair(sa, 1)!.local.address, other.local.address, 'A selected it too');
  t.ok(nominations.length > 0 && nominations.every((x, i) => i === 0 || x >= nominations[i - 1]!), `NOMINATION counts sent: ${nominations.join(', ')}`);
  for (let i = 0; i < 20; i++) { send(); await net.run({ for: 5 }); }
  await net.run({ for: 100 });
  t.equal(got.size, n, `all ${n} datagrams arrived across the switch`);
  const b2 = new Agent({ network: hb.network });
  t.equal(b2.renominate(b2.addStream(1), 1), false, 'without renomination (and with no valid pair) renominate() is false');
  await within(net, Promise.all([a.close(), b.close(), b2.close()]));
});
