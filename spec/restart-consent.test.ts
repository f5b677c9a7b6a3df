/** ICE restart (RFC 8445 §9), consent freshness (RFC 7675), keepalives (§11) and close() in every state. */
import t from 'tap';
import { Agent } from '../lib/index.js';
import {
  LOOPBACK, makePair, exchangeCandidates, waitState, waitFor, closeAll, trackHandles, filteredNetwork,
} from './helpers.js';

const isStunSuccess = (b: Buffer) => b.length >= 20 && b[0] === 0x01 && b[1] === 0x01;

t.test('restart while data flows: a new pair is selected and no datagram is lost at the switch', async (t) => {
  const p = await makePair({}, {});
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  const received = new Set<number>();
  let lastSeq = -1;
  let waitingFor = -1;
  let reached: () => void = () => {};
  p.b.attachRecv(1, 1, (d) => {
    const seq = d.readUInt32BE(1);
    received.add(seq);
    if (seq === waitingFor) reached();
  });
  let sent = 0;
  let sendFailures = 0;
  const sendOne = () => {
    const b = Buffer.alloc(64);
    b[0] = 0x80;
    b.writeUInt32BE(sent, 1);
    if (p.a.send(1, 1, b)) lastSeq = sent;
    else sendFailures++;
    sent++;
  };
  const pump = setInterval(sendOne, 1);
  t.teardown(() => clearInterval(pump));

  const oldCreds = p.a.getLocalCredentials(1);
  const newSelA = waitFor(p.a, 'new-selected-pair');
  const newSelB = waitFor(p.b, 'new-selected-pair');
  // A restarts; the signalling carries its new credentials and candidates to B.
  p.a.restartStream(1);
  const aCreds = p.a.getLocalCredentials(1);
  t.not(aCreds.ufrag, oldCreds.ufrag, 'new local ufrag');
  t.not(aCreds.pwd, oldCreds.pwd, 'new local pwd');
  p.b.setRemoteCredentials(1, aCreds.ufrag, aCreds.pwd);
  const bCreds = p.b.getLocalCredentials(1);
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  // B saw a remote restart and restarted too (new credentials), which A now learns.
  p.a.setRemoteCredentials(1, bCreds.ufrag, bCreds.pwd);
  p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1));
  await Promise.all([newSelA, newSelB]);
  t.equal(p.a.getComponentState(1, 1), 'ready');
  t.equal(p.b.getComponentState(1, 1), 'ready');
  // Keep sending a little after the switch, then wait for the last datagram.
  const after = sent + 50;
  while (sent < after) await new Promise((r) => setImmediate(r));
  clearInterval(pump);
  waitingFor = lastSeq;
  if (!received.has(lastSeq)) await new Promise<void>((r) => { reached = r; });
  t.equal(sendFailures, 0, 'send() never refused during the restart');
  const lost = [];
  for (let i = 0; i <= lastSeq; i++) if (!received.has(i)) lost.push(i);
  t.same(lost, [], `all ${lastSeq + 1} datagrams arrived`);
  t.ok(lastSeq > 50, 'data was flowing throughout');
});

t.test('consent: responses stop → disconnected, resume → ready, stop for consentTimeout → consent-lost and failed', async (t) => {
  let dropResponses = false;
  const timers = { consentInterval: 40, disconnectedTimeout: 150, consentTimeout: 600 };
  const p = await makePair({ ...timers }, {}, 1, 1);
  // B's answers are dropped in-process when asked.
  const b2 = new Agent({
    ...LOOPBACK, ...timers, controllingMode: false,
    network: filteredNetwork((buf) => !(dropResponses && isStunSuccess(Buffer.from(buf)))),
  });
  await p.b.close();
  p.b = b2;
  const sb = b2.addStream(1);
  await b2.gatherCandidates(sb);
  const ca = p.a.getLocalCredentials(1);
  const cb = b2.getLocalCredentials(sb);
  p.a.setRemoteCredentials(1, cb.ufrag, cb.pwd);
  b2.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  t.teardown(() => closeAll(p.a, b2));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(b2, sb, 1, 'ready')]);
  const sentBefore = p.a.getStats().consentChecksSent;

  dropResponses = true;
  await waitState(p.a, 1, 1, 'disconnected', 3000);
  t.ok(p.a.getStats().consentChecksSent > sentBefore, 'consent checks went out');
  t.ok(p.a.send(1, 1, Buffer.from([0x80])), 'still sending while disconnected');

  dropResponses = false;
  await waitState(p.a, 1, 1, 'ready', 3000);
  t.pass('back to ready when responses resume');

  dropResponses = true;
  const lost = waitFor(p.a, 'consent-lost', () => true, 5000);
  await waitState(p.a, 1, 1, 'failed', 5000);
  await lost;
  t.equal(p.a.send(1, 1, Buffer.from([0x80])), false, 'no data is sent after consent is lost');
  t.equal(p.a.getSelectedPair(1, 1), undefined);
  t.equal(p.a.getStats().consentLost, 1);
});

t.test('with consent freshness off, keepalives are Binding indications every keepaliveInterval', async (t) => {
  let indications = 0;
  let seen: () => void = () => {};
  const a = new Agent({
    ...LOOPBACK, controllingMode: true, consentFreshness: false, keepaliveInterval: 30,
    network: filteredNetwork((buf) => {
      if (buf.length >= 2 && buf[0] === 0x00 && buf[1] === 0x11 && ++indications === 3) seen();
      return true;
    }),
  });
  const b = new Agent({ ...LOOPBACK, controllingMode: false, consentFreshness: false });
  t.teardown(() => closeAll(a, b));
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  const ca = a.getLocalCredentials(sa);
  const cb = b.getLocalCredentials(sb);
  a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
  b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  await waitState(a, sa, 1, 'ready');
  await new Promise<void>((r) => { seen = r; if (indications >= 3) r(); });
  t.equal(a.getStats().consentChecksSent, 0, 'no consent requests');
  t.ok(a.getStats().keepalivesSent >= 3, 'keepalive indications sent');
  t.equal(a.getComponentState(sa, 1), 'ready', 'indications get no answer and that is fine');
});

t.test('close() in every state (gathering, checking, ready, failed) ends every timer and socket', async (t) => {
  const handles = trackHandles();
  t.teardown(() => handles.stop());
  // ready
  const p = await makePair({ consentInterval: 20 }, {});
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  let events = 0;
  p.a.on('component-state-changed', () => events++);
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'ready: nothing left');
  // failed
  const f = new Agent({ ...LOOPBACK, controllingMode: true, stunMaxRetransmissions: 1, stunInitialTimeout: 20, stunMaxTimeout: 20 });
  const fs = f.addStream(1);
  await f.gatherCandidates(fs);
  f.setRemoteCredentials(fs, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  f.setRemoteCandidates(fs, 1, ['candidate:1 1 udp 2130706431 127.0.0.1 9 typ host']);
  await waitState(f, fs, 1, 'failed');
  await f.close();
  t.same(await handles.live(), [], 'failed: nothing left');
  t.equal(events, 0, 'no events after close');
  // gathering and checking
  const g = new Agent(LOOPBACK);
  const gp = g.gatherCandidates(g.addStream(3));
  await g.close();
  await gp;
  const c = new Agent({ ...LOOPBACK, controllingMode: true });
  const cs = c.addStream(1);
  await c.gatherCandidates(cs);
  c.setRemoteCredentials(cs, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  c.setRemoteCandidates(cs, 1, ['candidate:1 1 udp 2130706431 127.0.0.1 9 typ host']);
  await c.close();
  t.same(await handles.live(), [], 'gathering and checking: nothing left');
});
