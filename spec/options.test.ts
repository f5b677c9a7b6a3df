import t, { type Test } from 'tap';
import { Agent } from '../lib/agent.js';
import { IceError, InvalidOptionError } from '../lib/errors.js';
import { type AgentOptions, resolveOptions } from '../lib/options.js';
import { nodeNetwork } from '../lib/transport/node-network.js';

/** Asserts that `fn` throws an InvalidOptionError naming `option`. */
function throwsOption(t: Test, fn: () => unknown, option: string | string[], what: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof InvalidOptionError)) {
    t.fail(`${what}: expected InvalidOptionError, got ${String(err)}`);
    return;
  }
  const names = Array.isArray(option) ? option : [option];
  t.ok(names.includes(err.option), `${what}: .option is ${JSON.stringify(err.option)}, expected ${names.join(' or ')}`);
}

/** Passes anything (including ill-typed values) to resolveOptions, as a JavaScript caller could. */
const resolve = (o: unknown) => resolveOptions(o as AgentOptions);

t.test('defaults', async (t) => {
  const expected = {
    controllingMode: false,
    nominationMode: 'regular',
    stunPacingTimer: 20,
    stunMaxRetransmissions: 6,
    stunInitialTimeout: 500,
    stunMaxTimeout: 1600,
    keepaliveInterval: 15000,
    ipv4: true,
    ipv6: true,
    maxPairs: 100,
    maxRemoteCandidates: 64,
    nominationTimeout: 1000,
    localAddresses: undefined,
    portRange: undefined,
  };
  // Compared key by key, so that options added later do not break this test.
  const check = (got: Record<string, unknown>, what: string) => {
    const wrong = Object.entries(expected).filter(([k, v]) => !(k in got) || got[k] !== v).map(([k]) => k);
    t.strictSame(wrong, [], `${what}: every documented default`);
  };
  check(resolveOptions(), 'no argument');
  check(resolveOptions({}), 'empty object');
  check(resolveOptions({ maxPairs: undefined, ipv6: undefined }), 'undefined values count as absent');
  // RFC 8445 §14.2: Ta must not be below 5 ms; the boundary is accepted.
  t.equal(resolveOptions({ stunPacingTimer: 5 }).stunPacingTimer, 5, 'Ta = 5 ms accepted');
  t.equal(resolveOptions({ stunMaxRetransmissions: 0 }).stunMaxRetransmissions, 0, 'zero retransmissions accepted');
  t.equal(resolveOptions({ nominationTimeout: 0 }).nominationTimeout, 0, 'nomination timeout 0 accepted');
  t.equal(resolveOptions({ stunInitialTimeout: 800, stunMaxTimeout: 800 }).stunMaxTimeout, 800, 'max = initial accepted');
  t.equal(resolveOptions({ ipv4: false }).ipv4, false, 'ipv4 false alone accepted');
  t.equal(resolveOptions({ ipv6: false }).ipv6, false, 'ipv6 false alone accepted');
  t.strictSame(resolveOptions({ portRange: { min: 5000, max: 5000 } }).portRange, { min: 5000, max: 5000 }, 'single-port range');
  t.equal(resolveOptions({ nominationMode: 'aggressive' }).nominationMode, 'aggressive');
  t.equal(resolveOptions({ controllingMode: true }).controllingMode, true);
  const input: AgentOptions = { localAddresses: ['127.0.0.1', '::1'] };
  const out = resolveOptions(input);
  t.strictSame(out.localAddresses, ['127.0.0.1', '::1'], 'localAddresses kept');
  input.localAddresses!.push('10.0.0.1');
  t.strictSame(out.localAddresses, ['127.0.0.1', '::1'], 'copied: later changes to the input do not leak in');
  t.strictSame(input, { localAddresses: ['127.0.0.1', '::1', '10.0.0.1'] }, 'input not rewritten');
});

t.test('the error type', async (t) => {
  let err: unknown;
  try {
    resolve({ stunPacingTimer: 1 });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof InvalidOptionError, 'InvalidOptionError');
  t.ok(err instanceof IceError, 'an IceError');
  t.ok(err instanceof Error, 'an Error');
  const e = err as InvalidOptionError;
  t.equal(e.option, 'stunPacingTimer');
  t.equal(e.code, 'ERR_ICE_INVALID_OPTION');
  t.equal(e.name, 'InvalidOptionError');
  t.match(e.message, /stunPacingTimer/, 'message names the option');
});

t.test('not an object, unknown options', async (t) => {
  throwsOption(t, () => resolve(null), 'options', 'null');
  throwsOption(t, () => resolve(42), 'options', 'a number');
  throwsOption(t, () => resolve('controllingMode'), 'options', 'a string');
  throwsOption(t, () => resolve({ bogus: 1 }), 'bogus', 'unknown option');
  throwsOption(t, () => resolve({ controlling: true }), 'controlling', 'near-miss of controllingMode');
  throwsOption(t, () => resolve({ maxPairs: 10, stunPacingTimers: 20 }), 'stunPacingTimers', 'unknown among known');
});

t.test('each option: wrong types and out-of-range values', async (t) => {
  const cases: Array<[string, unknown[]]> = [
    ['controllingMode', ['yes', 1, 0, null]],
    ['nominationMode', ['fast', 'Regular', 1, true, null]],
    // RFC 8445 §14.2: Ta >= 5 ms.
    ['stunPacingTimer', [4, 0, -20, 2.5, '20', Number.NaN, 10001, null]],
    ['stunMaxRetransmissions', [-1, 21, 2.5, '6', null]],
    ['stunInitialTimeout', [0, -500, 60001, 1.5, '500']],
    ['stunMaxTimeout', [0, 600001, 1600.5, '1600']],
    ['keepaliveInterval', [9, 0, 3600001, 15000.5, '15000']],
    ['ipv4', ['true', 1, null]],
    ['ipv6', ['false', 0, null]],
    ['maxPairs', [0, -1, 10001, 1.5, '100', Number.POSITIVE_INFINITY]],
    ['maxRemoteCandidates', [0, 10001, 2.5, '64']],
    ['nominationTimeout', [-1, 600001, 0.5, '1000']],
    ['localAddresses', [[], 'x', '127.0.0.1', ['10.0.0.1', 'not-an-ip'], [42], ['example.com'], ['10.0.0.256'], ['127.0.0.1:5000'], null, {}]],
    ['portRange', [null, 'x', 5000, { min: 0, max: 10 }, { min: 1, max: 65536 }, { min: '1', max: 2 }, { min: 1 }, { max: 2 }, { min: 1.5, max: 2 }]],
  ];
  for (const [name, values] of cases) {
    for (const v of values) throwsOption(t, () => resolve({ [name]: v }), name, `${name} = ${JSON.stringify(v) ?? String(v)}`);
  }
});

t.test('cross-option rules', async (t) => {
  throwsOption(t, () => resolve({ portRange: { min: 5001, max: 5000 } }), 'portRange', 'portRange min > max');
  throwsOption(t, () => resolve({ ipv4: false, ipv6: false }), ['ipv4', 'ipv6'], 'ipv4 and ipv6 both false');
  throwsOption(t, () => resolve({ stunInitialTimeout: 500, stunMaxTimeout: 499 }), 'stunMaxTimeout', 'stunMaxTimeout < stunInitialTimeout');
  throwsOption(t, () => resolve({ stunMaxTimeout: 400 }), 'stunMaxTimeout', 'stunMaxTimeout below the default initial timeout (500)');
  throwsOption(t, () => resolve({ stunInitialTimeout: 2000 }), ['stunMaxTimeout', 'stunInitialTimeout'], 'initial timeout above the default max (1600)');
});

t.test('the Agent constructor throws the same typed error', async (t) => {
  throwsOption(t, () => new Agent({ stunPacingTimer: 1 }), 'stunPacingTimer', 'Agent: Ta below 5 ms');
  throwsOption(t, () => new Agent({ bogus: true } as unknown as AgentOptions), 'bogus', 'Agent: unknown option');
  throwsOption(t, () => new Agent({ localAddresses: ['nope'] }), 'localAddresses', 'Agent: bad local address');
  throwsOption(t, () => new Agent({ ipv4: false, ipv6: false }), ['ipv4', 'ipv6'], 'Agent: no address family');
  throwsOption(t, () => new Agent({ portRange: { min: 9, max: 8 } }), 'portRange', 'Agent: inverted port range');
});

t.test('agents made with equal options share one frozen options object (a media server makes thousands)', async (t) => {
  const net = nodeNetworkLike();
  const a = new Agent({ iceLite: true, stunServers: ['stun:127.0.0.1:3478'] });
  const b = new Agent({ stunServers: ['stun:127.0.0.1:3478'], iceLite: true });
  const c = new Agent({ iceLite: true, stunServers: ['stun:127.0.0.1:3479'] });
  const d = new Agent({ iceLite: true, stunServers: ['stun:127.0.0.1:3478'], network: net as never });
  t.equal(a.options, b.options, 'the same options in another order: one object');
  t.not(a.options, c.options, 'another server: another object');
  t.not(a.options, d.options, 'another network object: another object (objects count by identity)');
  t.ok(Object.isFrozen(a.options) && Object.isFrozen(a.options.stunServers), 'frozen, with its lists');
  t.throws(() => { (a.options.stunServers as string[]).push('stun:x'); }, TypeError, 'a list cannot be changed under the other agents');
  await Promise.all([a, b, c, d].map((x) => x.close()));
});

/** A Network that is not the default one, for identity: every method of the default, rebound. */
function nodeNetworkLike(): Record<string, unknown> {
  const n = nodeNetwork as unknown as Record<string, (...args: unknown[]) => unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['now', 'setTimer', 'clearTimer', 'randomBytes', 'interfaces', 'bindDatagram', 'connectStream', 'listenStream', 'lookup']) out[k] = n[k]!.bind(n);
  return out;
}
