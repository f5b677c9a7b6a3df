/**
 * The client side of examples/signalling-server.ts, and two Agents that
 * connect through it with trickle ICE (RFC 8838, RFC 8840): the offerer
 * posts an SDP offer made before gathering (no candidates yet), the
 * answerer receives it over its WebSocket and posts an answer, and both
 * trickle their candidates through POST /ice as they are gathered, then
 * end-of-candidates. Run `node dist/examples/signalling-client.js` to
 * start a server and both peers in one process over loopback.
 */
import { request, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { Agent, serializeCandidate, type Candidate, type ComponentState } from '../lib/index.js';
import { applyDescription, describeAgent, generateSdp, parseSdp } from '../lib/sdp/index.js';
import { SignallingServer, type IceCandidateInit, type Role, type SignalMessage } from './signalling-server.js';

/** The server answered a request with an error status. */
export class SignallingError extends Error {
  constructor(readonly status: number, readonly body: string) {
    super(`signalling server: ${status} ${body}`);
    this.name = 'SignallingError';
  }
}

export class SignallingClient {
  constructor(readonly baseUrl: string) {}

  /** POSTs a JSON body; resolves with the parsed answer (undefined for 204). A new connection each time, closed after the answer. */
  async post(path: string, body: unknown): Promise<unknown> {
    const text = JSON.stringify(body);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(new URL(path, this.baseUrl), {
        method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      }, resolve);
      req.on('error', reject);
      req.end(text);
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const answer = Buffer.concat(chunks).toString('utf8');
    if (res.statusCode === undefined || res.statusCode >= 300) throw new SignallingError(res.statusCode ?? 0, answer);
    return answer === '' ? undefined : JSON.parse(answer);
  }

  /** POST /offer; resolves with the new session's id. */
  async offer(sdp: string): Promise<string> {
    const { session } = (await this.post('/offer', { type: 'offer', sdp })) as { session: string };
    return session;
  }

  answer(session: string, sdp: string): Promise<unknown> {
    return this.post(`/answer?session=${encodeURIComponent(session)}`, { type: 'answer', sdp });
  }

  candidate(session: string, from: Role, init: IceCandidateInit): Promise<unknown> {
    return this.post(`/ice?session=${encodeURIComponent(session)}&role=${from}`, init);
  }

  /** Opens the WebSocket of one side; `onMessage` gets every message pushed, in order. */
  async channel(session: string, role: Role, onMessage: (msg: SignalMessage) => void): Promise<WebSocket> {
    const url = new URL(`/ws?session=${encodeURIComponent(session)}&role=${role}`, this.baseUrl);
    url.protocol = 'ws:';
    const ws = new WebSocket(url);
    ws.on('message', (data) => {
      let msg: SignalMessage;
      try {
        msg = JSON.parse(String(data)) as SignalMessage;
      } catch {
        return ws.close(1007, 'not JSON');
      }
      onMessage(msg);
    });
    await once(ws, 'open');
    // A WebSocket error is always followed by 'close'; unheard, it would be thrown.
    ws.on('error', () => undefined);
    return ws;
  }
}

export interface PeerOptions {
  /** Errors after the start (a bad message from the peer, a failed POST); `console.error` by default. */
  onError?: (err: unknown) => void;
}

/** One side of a signalled stream. */
export interface SignalledStream {
  readonly session: string;
  readonly streamId: number;
  /** Resolves once every local candidate and the end-of-candidates are posted. */
  readonly trickled: Promise<void>;
  /** Closes the WebSocket; resolves when it is closed. */
  close(): Promise<void>;
}

const MID = '0';

/**
 * Posts the stream's candidates as the agent gathers them, in order, then
 * end-of-candidates (an empty candidate, as the W3C API signals it).
 */
function trickle(agent: Agent, streamId: number, client: SignallingClient, session: string, from: Role): Promise<void> {
  let chain = Promise.resolve();
  const post = (candidate: string) => {
    chain = chain.then(() => client.candidate(session, from, { candidate, sdpMid: MID, sdpMLineIndex: 0 })).then(() => undefined);
  };
  const onCandidate = (c: Candidate) => {
    if (c.streamId === streamId) post(serializeCandidate(c));
  };
  agent.on('new-candidate', onCandidate);
  return agent.gatherCandidates(streamId).then(() => {
    agent.off('new-candidate', onCandidate);
    post('');
    return chain;
  });
}

/** A trickled candidate of the peer, for the one stream this example signals. */
function remoteCandidate(agent: Agent, streamId: number, ice: IceCandidateInit): void {
  if ((ice.sdpMid ?? MID) !== MID || (ice.sdpMLineIndex ?? 0) !== 0) return;
  if (ice.candidate === '') agent.peerCandidateGatheringDone(streamId);
  else agent.addRemoteCandidate(streamId, ice.candidate);
}

function closer(ws: WebSocket): () => Promise<void> {
  return async () => {
    if (ws.readyState === WebSocket.CLOSED) return;
    const closed = once(ws, 'close');
    ws.close();
    await closed;
  };
}

/**
 * The offering side (controlling, RFC 8445 §6.1.1): a stream of
 * `components`, an offer before gathering, then trickle. Both agents need
 * `iceTrickle: true`, since the offer and the answer carry no candidate.
 */
export async function startOfferer(agent: Agent, client: SignallingClient, components = 1, opts: PeerOptions = {}): Promise<SignalledStream> {
  const onError = opts.onError ?? ((err: unknown) => console.error(err));
  const streamId = agent.addStream(components);
  const session = await client.offer(generateSdp(describeAgent(agent, [{ streamId, mid: MID }])));
  const ws = await client.channel(session, 'offerer', (msg) => {
    try {
      if ('sdp' in msg && msg.sdp.type === 'answer') applyDescription(agent, streamId, parseSdp(msg.sdp.sdp), MID);
      else if ('ice' in msg) remoteCandidate(agent, streamId, msg.ice);
    } catch (err) {
      onError(err);
    }
  });
  const trickled = trickle(agent, streamId, client, session, 'offerer');
  trickled.catch(onError);
  return { session, streamId, trickled, close: closer(ws) };
}

/**
 * The answering side: waits on its WebSocket for the offer of `session`,
 * makes a stream of as many components, applies the offer, posts an answer
 * made before gathering, then trickles. Resolves once the answer is posted.
 */
export async function startAnswerer(agent: Agent, client: SignallingClient, session: string, opts: PeerOptions = {}): Promise<SignalledStream> {
  const onError = opts.onError ?? ((err: unknown) => console.error(err));
  let streamId: number | undefined;
  let answered!: (s: SignalledStream) => void;
  let failed!: (err: unknown) => void;
  const started = new Promise<SignalledStream>((resolve, reject) => ((answered = resolve), (failed = reject)));
  const ws = await client.channel(session, 'answerer', (msg) => {
    try {
      if ('sdp' in msg && msg.sdp.type === 'offer' && streamId === undefined) {
        const offer = parseSdp(msg.sdp.sdp);
        const section = offer.streams.findIndex((s) => s.mid === MID);
        const id = agent.addStream(offer.streams[section]?.components ?? 1);
        streamId = id;
        applyDescription(agent, id, offer, section);
        // The answer goes before any candidate, so that the offerer knows the credentials first.
        client.answer(session, generateSdp(describeAgent(agent, [{ streamId: id, mid: MID }]))).then(() => {
          const trickled = trickle(agent, id, client, session, 'answerer');
          trickled.catch(onError);
          answered({ session, streamId: id, trickled, close: closer(ws) });
        }, failed);
      } else if ('ice' in msg && streamId !== undefined) {
        remoteCandidate(agent, streamId, msg.ice);
      }
    } catch (err) {
      if (streamId === undefined) failed(err);
      else onError(err);
    }
  });
  ws.once('close', () => failed(new Error('the WebSocket closed before the offer came')));
  return started;
}

/** Resolves when component 1 of the stream is ready. */
function ready(agent: Agent, streamId: number): Promise<void> {
  return new Promise((resolve) => {
    const on = (s: number, c: number, state: ComponentState) => {
      if (s !== streamId || c !== 1 || state !== 'ready') return;
      agent.off('component-state-changed', on);
      resolve();
    };
    agent.on('component-state-changed', on);
  });
}

/** The demo: a server and two agents in this process; one datagram each way. A sketch: no timeout. */
async function demo(): Promise<void> {
  const server = await SignallingServer.start();
  const client = new SignallingClient(server.url);
  const offerer = new Agent({ controllingMode: true, iceTrickle: true, localAddresses: ['127.0.0.1'] });
  const answerer = new Agent({ controllingMode: false, iceTrickle: true, localAddresses: ['127.0.0.1'] });
  const a = await startOfferer(offerer, client);
  const offererReady = ready(offerer, a.streamId);
  const b = await startAnswerer(answerer, client, a.session);
  await Promise.all([offererReady, ready(answerer, b.streamId)]);
  const toAnswerer = new Promise<string>((resolve) => answerer.attachRecv(b.streamId, 1, (data) => resolve(data.toString())));
  const toOfferer = new Promise<string>((resolve) => offerer.attachRecv(a.streamId, 1, (data) => resolve(data.toString())));
  offerer.send(a.streamId, 1, Buffer.from('hello from the offerer'));
  answerer.send(b.streamId, 1, Buffer.from('hello from the answerer'));
  console.log(`answerer got: ${await toAnswerer}`);
  console.log(`offerer got: ${await toOfferer}`);
  await Promise.all([a.trickled, b.trickled]);
  await Promise.all([a.close(), b.close(), offerer.close(), answerer.close()]);
  await server.close();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await demo();
