/**
 * examples/signalling-server.ts and examples/signalling-client.ts: two
 * Agents connect through the server with trickle ICE (candidates over
 * POST /ice and WebSocket pushes) and move data both ways; bad requests get
 * a 4xx and the server goes on; it closes leaving no handle behind.
 */
import t from 'tap';
import { once } from 'node:events';
import { request } from 'node:http';
import WebSocket from 'ws';
import { Agent } from '../lib/index.js';
import { parseSdp } from '../lib/sdp/index.js';
import { SignallingServer } from '../examples/signalling-server.js';
import { SignallingClient, SignallingError, startAnswerer, startOfferer } from '../examples/signalling-client.js';
import { LOOPBACK, trackHandles, waitState } from './helpers.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP ice-agent\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n'
  + 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n';
const HANDLES = ['Timeout', 'UDPWRAP', 'TCPWRAP', 'TCPSERVERWRAP'];

/** A raw request: status and body, whatever the server says. */
function raw(base: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string | number> = {}, chunked = false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined && !chunked) req.setHeader('content-length', Buffer.byteLength(body));
    if (chunked && body !== undefined) {
      // Several writes without a content-length: chunked transfer encoding.
      for (let i = 0; i < body.length; i += 16384) req.write(body.slice(i, i + 16384));
      req.end();
    } else req.end(body);
  });
}

/** Resolves with a ws client's refused-upgrade status. */
function refusedUpgrade(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => undefined);
  });
}

t.test('two agents connect through the server with trickle ICE and move data both ways', async (t) => {
  const handles = trackHandles(HANDLES);
  t.teardown(() => handles.stop());
  const server = await SignallingServer.start();
  const client = new SignallingClient(server.url);
  const offerer = new Agent({ ...LOOPBACK, controllingMode: true, iceTrickle: true });
  const answerer = new Agent({ ...LOOPBACK, controllingMode: false, iceTrickle: true });
  const errors: unknown[] = [];
  const onError = (err: unknown) => errors.push(err);

  // What the answerer gathers, to find it trickled to the offerer.
  const gathered: string[] = [];
  answerer.on('new-candidate', (c) => gathered.push(`${c.address}:${c.port}`));
  const a = await startOfferer(offerer, client, 1, { onError });
  const offererReady = waitState(offerer, a.streamId, 1, 'ready', 10_000);
  const b = await startAnswerer(answerer, client, a.session, { onError });
  await Promise.all([offererReady, waitState(answerer, b.streamId, 1, 'ready', 10_000)]);
  await Promise.all([a.trickled, b.trickled]);

  t.equal(server.sessions, 1);
  const remote = offerer.getRemoteCandidates(a.streamId, 1).map((c) => `${c.address}:${c.port}`);
  t.ok(gathered.length > 0 && gathered.every((c) => remote.includes(c)), 'the answerer\'s trickled candidates reached the offerer');
  t.ok(offerer.getRemoteCredentials(a.streamId), 'the answer\'s credentials reached the offerer');
  const toB = new Promise<string>((resolve) => answerer.attachRecv(b.streamId, 1, (d) => resolve(d.toString())));
  const toA = new Promise<string>((resolve) => offerer.attachRecv(a.streamId, 1, (d) => resolve(d.toString())));
  t.ok(offerer.send(a.streamId, 1, Buffer.from('ping')));
  t.ok(answerer.send(b.streamId, 1, Buffer.from('pong')));
  t.equal(await toB, 'ping');
  t.equal(await toA, 'pong');
  t.same(errors, [], 'no error on either side');

  await Promise.all([a.close(), b.close(), offerer.close(), answerer.close()]);
  await server.close();
  t.same(await handles.live(), [], 'no timer, socket or server left');
});

t.test('bad requests get a 4xx, and the server goes on', async (t) => {
  const handles = trackHandles(HANDLES);
  t.teardown(() => handles.stop());
  const server = await SignallingServer.start({ maxSessions: 2, maxBodyBytes: 4096, maxQueued: 3 });
  const base = server.url;
  const json = { 'content-type': 'application/json' };
  const post = (path: string, body: unknown) => raw(base, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body), json);

  t.equal((await post('/offer', '{"type": "offer", ')).status, 400, 'bad JSON');
  t.equal((await post('/offer', '[1, 2]')).status, 400, 'not an object');
  t.equal((await post('/offer', { type: 'answer', sdp: OFFER })).status, 400, 'wrong type');
  const badSdp = await post('/offer', { type: 'offer', sdp: OFFER.replace('abcd', 'abc') });
  t.equal(badSdp.status, 400, 'a malformed SDP');
  t.match(JSON.parse(badSdp.body), { line: 8, field: 'ice-ufrag' }, 'the answer names the line and the field');
  t.equal((await raw(base, 'GET', '/offer')).status, 405, 'GET /offer');
  t.equal((await post('/nowhere', {})).status, 404, 'unknown path');
  t.equal((await post('/answer?session=nope', { type: 'answer', sdp: OFFER })).status, 404, 'unknown session');
  t.equal((await post('/answer', { type: 'answer', sdp: OFFER })).status, 400, 'no session');
  t.equal((await post('/offer', 'x'.repeat(5000))).status, 413, 'an oversized body');
  t.equal((await raw(base, 'POST', '/offer', 'x'.repeat(200_000), json, true)).status, 413, 'an oversized chunked body');

  const { status, body } = await post('/offer', { type: 'offer', sdp: OFFER });
  t.equal(status, 201);
  const session = (JSON.parse(body) as { session: string }).session;
  const ice = (role: string, init: unknown) => post(`/ice?session=${session}&role=${role}`, init);
  t.equal((await ice('spy', { candidate: '' })).status, 400, 'unknown role');
  t.equal((await ice('offerer', { candidate: 'candidate:1 1 udp 1 127.0.0.1 70000 typ host' })).status, 400, 'a malformed candidate');
  t.match(JSON.parse((await ice('offerer', { candidate: 'candidate:1 1 udp 1 127.0.0.1 70000 typ host' })).body), { field: 'port' });
  t.equal((await ice('offerer', { candidate: 42 })).status, 400, 'a candidate that is no string');
  t.equal((await ice('offerer', { candidate: '', sdpMLineIndex: 1 })).status, 400, 'no such m= line');
  t.equal((await ice('offerer', { candidate: '', sdpMid: 'video' })).status, 400, 'no such mid');
  for (let i = 0; i < 2; i++) t.equal((await ice('offerer', { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0' })).status, 204);
  t.equal((await ice('offerer', { candidate: '', sdpMLineIndex: 0 })).status, 429, 'the answerer\'s queue is full (the offer and 2 candidates wait)');
  t.equal((await post(`/answer?session=${session}`, { type: 'answer', sdp: OFFER })).status, 204);
  t.equal((await post(`/answer?session=${session}`, { type: 'answer', sdp: OFFER })).status, 409, 'answered twice');

  t.equal((await post('/offer', { type: 'offer', sdp: OFFER })).status, 201);
  t.equal((await post('/offer', { type: 'offer', sdp: OFFER })).status, 429, 'too many sessions');

  const ws = `ws://127.0.0.1:${server.port}/ws`;
  t.equal(await refusedUpgrade(`${ws}?session=nope&role=offerer`), 404, 'WebSocket to an unknown session');
  t.equal(await refusedUpgrade(`${ws}?session=${session}&role=spy`), 400, 'WebSocket with an unknown role');
  t.equal(await refusedUpgrade(`ws://127.0.0.1:${server.port}/other?session=${session}&role=offerer`), 404, 'WebSocket elsewhere');
  const answerer = new WebSocket(`${ws}?session=${session}&role=answerer`);
  const first = once(answerer, 'message');
  await once(answerer, 'open');
  t.match(JSON.parse(String((await first)[0])), { sdp: { type: 'offer', sdp: OFFER } }, 'the queued offer comes first');
  t.equal(await refusedUpgrade(`${ws}?session=${session}&role=answerer`), 409, 'a second answerer');
  const closed = once(answerer, 'close');
  answerer.send('hello?');
  t.equal((await closed)[0], 1008, 'a client that talks on the push channel is closed');
  const again = new WebSocket(`${ws}?session=${session}&role=answerer`);
  await once(again, 'open');
  const tooBig = once(again, 'close');
  again.send('x'.repeat(5000));
  t.equal((await tooBig)[0], 1009, 'a frame over 4 KiB closes the WebSocket (the side may reconnect, as it just did)');

  t.equal((await post('/offer', { type: 'offer', sdp: OFFER })).status, 429, 'still up, still bounded');
  await server.close();
  t.same(await handles.live(), [], 'no timer, socket or server left');
});

t.test('an idle session expires', async (t) => {
  const server = await SignallingServer.start({ idleTimeout: 50 });
  t.teardown(() => server.close());
  const client = new SignallingClient(server.url);
  const session = await client.offer(OFFER);
  const [expired] = await once(server, 'session-expired', { signal: AbortSignal.timeout(5000) });
  t.equal(expired, session);
  t.equal(server.sessions, 0);
  const err = await client.answer(session, OFFER).then(() => undefined, (e: unknown) => e);
  t.type(err, SignallingError, 'the client throws a SignallingError');
  t.match(err, { status: 404 }, '404: the session is gone');
  t.ok(parseSdp(OFFER), 'the offer was valid all along');
});
