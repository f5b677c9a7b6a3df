/** Trickle ICE (RFC 8838) and the timeouts that bound a checklist. */
import t from 'tap';
import { Agent, type Candidate } from '../lib/index.js';
import { LOOPBACK, waitState, waitFor, until, shuffle, closeAll, deadPort } from './helpers.js';

const DUAL = { ...LOOPBACK, localAddresses: ['127.0.0.1', '::1'] };

for (const seed of [1, 2, 3]) {
  t.test(`trickled candidates in random order with delays reach ready (seed ${seed})`, async (t) => {
    const a = new Agent({ ...DUAL, controllingMode: true, iceTrickle: true });
    const b = new Agent({ ...DUAL, controllingMode: false, iceTrickle: true });
    t.teardown(() => closeAll(a, b));
    const sa = a.addStream(2);
    const sb = b.addStream(2);
    // Candidates go to the other side as they are gathered, each after a random delay.
    const relay = (from: Agent, to: Agent, streamId: number, sink: Candidate[]) =>
      from.on('new-candidate', (c) => sink.push(c));
    const fromA: Candidate[] = [];
    const fromB: Candidate[] = [];
    relay(a, b, sb, fromA);
    relay(b, a, sa, fromB);
    const ca = a.getLocalCredentials(sa);
    const cb = b.getLocalCredentials(sb);
    a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
    b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
    await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
    t.equal(fromA.length, 4, 'new-candidate fired once per candidate (2 addresses x 2 components)');
    const deliver = async (list: Candidate[], to: Agent, streamId: number, s: number) => {
      for (const c of shuffle([...list], s)) {
        await new Promise((r) => setTimeout(r, (c.port + s) % 20));
        to.addRemoteCandidate(streamId, c);
      }
      to.peerCandidateGatheringDone(streamId);
    };
    await Promise.all([
      deliver(fromA, b, sb, seed),
      deliver(fromB, a, sa, seed + 100),
      ...[1, 2].flatMap((c) => [waitState(a, sa, c, 'ready'), waitState(b, sb, c, 'ready')]),
    ]);
    for (const c of [1, 2]) {
      const pa = a.getSelectedPair(sa, c)!;
      const pb = b.getSelectedPair(sb, c)!;
      t.equal(pa.local.port, pb.remote.port, `component ${c}: the selected pairs agree`);
      t.equal(pa.remote.port, pb.local.port);
    }
  });
}

t.test('remote candidates that arrive before the remote credentials are held, then used', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, iceTrickle: true });
  const b = new Agent({ ...LOOPBACK, controllingMode: false, iceTrickle: true });
  t.teardown(() => closeAll(a, b));
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  t.equal(a.getStats().checksSent, 0, 'no check goes out without the remote credentials');
  t.equal(a.getRemoteCandidates(sa, 1).length, 1, 'the candidate is held');
  const ca = a.getLocalCredentials(sa);
  const cb = b.getLocalCredentials(sb);
  a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
  t.equal(a.getStats().checksSent, 1, 'the first check goes out at once when the credentials come');
  b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  await Promise.all([waitState(a, sa, 1, 'ready'), waitState(b, sb, 1, 'ready')]);
});

t.test('with trickle, a checklist fails only after end-of-candidates', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, iceTrickle: true, stunMaxRetransmissions: 1, trickleTimeout: 60000 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  a.addRemoteCandidate(s, `candidate:1 1 udp 2130706431 127.0.0.1 ${await deadPort()} typ host`);
  await until(() => a.getPairs(s)[0]?.state === 'failed', 5000, 'the only pair to fail');
  t.equal(a.getComponentState(s, 1), 'connecting', 'still connecting: more candidates may come');
  const failed = waitState(a, s, 1, 'failed');
  a.peerCandidateGatheringDone(s);
  await failed;
  t.pass('failed once the peer said it had no more candidates');
});

t.test('with trickle and no end-of-candidates, trickleTimeout bounds the wait', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, iceTrickle: true, stunMaxRetransmissions: 1, trickleTimeout: 300 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  a.addRemoteCandidate(s, `candidate:1 1 udp 2130706431 127.0.0.1 ${await deadPort()} typ host`);
  await waitState(a, s, 1, 'failed', 5000);
  t.equal(a.getPairs(s)[0]!.state, 'failed');
});

t.test('without trickle, a remote that never answers fails within the retransmission horizon', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, stunInitialTimeout: 50, stunMaxTimeout: 100, stunMaxRetransmissions: 3 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  a.setRemoteCandidates(s, 1, [`candidate:1 1 udp 2130706431 127.0.0.1 ${await deadPort()} typ host`]);
  await waitState(a, s, 1, 'failed', 5000);
  const st = a.getStats();
  t.equal(st.checksSent, 1);
  t.equal(st.checkRetransmissions, 3, 'the configured number of retransmissions, then failure');
});

t.test('end-of-candidates with no candidates at all fails the component', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, iceTrickle: true });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  const failed = waitFor(a, 'component-state-changed', (_s: number, _c: number, st: string) => st === 'failed');
  a.peerCandidateGatheringDone(s);
  await failed;
  t.equal(a.getComponentState(s, 1), 'failed');
});
