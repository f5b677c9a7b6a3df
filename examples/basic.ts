/** Two ICE agents in one process: connect over loopback, send one message each way. */
import { Agent, type ComponentState } from '../lib/index.js';

const alice = new Agent({ controllingMode: true, localAddresses: ['127.0.0.1'] });
const bob = new Agent({ controllingMode: false, localAddresses: ['127.0.0.1'] });
const a = alice.addStream(1); // one stream with one component (component 1)
const b = bob.addStream(1);

// Resolves when a component reaches `state`.
const reach = (agent: Agent, stream: number, state: ComponentState) =>
  new Promise<void>((resolve) => agent.on('component-state-changed', (s, _c, st) => s === stream && st === state && resolve()));
// Resolves with the first datagram a component receives.
const receive = (agent: Agent, stream: number) =>
  new Promise<string>((resolve) => agent.attachRecv(stream, 1, (data) => resolve(data.toString())));

const ready = Promise.all([reach(alice, a, 'ready'), reach(bob, b, 'ready')]);
await Promise.all([alice.gatherCandidates(a), bob.gatherCandidates(b)]);

// The signalling exchange (SDP offer/answer in real life): credentials and candidates.
const ca = alice.getLocalCredentials(a);
const cb = bob.getLocalCredentials(b);
alice.setRemoteCredentials(a, cb.ufrag, cb.pwd);
bob.setRemoteCredentials(b, ca.ufrag, ca.pwd);
alice.setRemoteCandidates(a, 1, bob.getLocalCandidates(b, 1));
bob.setRemoteCandidates(b, 1, alice.getLocalCandidates(a, 1));

await ready;
const pair = alice.getSelectedPair(a, 1)!;
console.log(`ready: ${pair.local.address}:${pair.local.port} <-> ${pair.remote.address}:${pair.remote.port}`);

const toBob = receive(bob, b);
const toAlice = receive(alice, a);
alice.send(a, 1, Buffer.from('hello from alice'));
console.log(`bob got: ${await toBob}`);
bob.send(b, 1, Buffer.from('hello from bob'));
console.log(`alice got: ${await toAlice}`);

await Promise.all([alice.close(), bob.close()]);
