import t from 'tap';
import type { Candidate } from '../lib/core/candidate.js';
import {
  AggressiveControlling,
  Controlled,
  type Role,
  RegularControlling,
  createRole,
} from '../lib/core/nomination.js';
import type { Pair, PairState } from '../lib/core/state.js';
import { pairOf } from './support/core-fixtures.js';

function cand(address: string, port: number, priority: number, type: Candidate['type'] = 'host'): Candidate {
  return { type, transport: 'udp', foundation: String(port), component: 1, priority, address, port };
}

const remote = cand('10.0.1.1', 9, 100000);
/**
 * A pair whose priority grows with `localPriority` (MIN(G, D) = localPriority below 100000), host ↔ host
 * unless told: `types` gives the local and remote candidate types.
 */
function pair(port: number, localPriority: number, state: PairState, types: [Candidate['type'], Candidate['type']] = ['host', 'host']): Pair {
  return pairOf(cand('10.0.0.1', port, localPriority, types[0]), { ...remote, type: types[1] }, true, state);
}

// RFC 8445 §8.1.1: with regular nomination the controlling agent picks a valid pair and repeats its check
// with USE-CANDIDATE; it may wait for higher-priority pairs still being checked, but not for ever.
t.test('regular controlling: nominates the best valid pair at once when nothing better is pending (§8.1.1)', async (t) => {
  const n = new RegularControlling(1000);
  t.equal(n.controlling, true);
  t.equal(n.mode, 'regular');
  t.equal(n.followsUseCandidate, false, 'the controlling side does not obey USE-CANDIDATE (§7.3.1.5)');
  const best = pair(1, 900, 'succeeded');
  const other = pair(2, 500, 'succeeded');
  const lowPending = pair(3, 100, 'in-progress'); // lower than best: does not matter
  const failedHigher = pair(4, 5000, 'failed'); // higher but failed: cannot succeed any more
  const pairs = [failedHigher, best, other, lowPending];
  best.valid = other.valid = true;
  const d = n.decide(pairs, [best, other], 0);
  t.equal(d.nominate, best, 'the highest-priority valid pair, at time 0');
  t.equal(d.recheckInMs, undefined, 'no recheck needed');
  t.strictSame(n.decide(pairs, [], 0), {}, 'no valid pair: nothing to nominate');
});

t.test('regular controlling: waits while a higher-priority pair may still succeed (§8.1.1)', async (t) => {
  const n = new RegularControlling(1000);
  // A direct pair that is neither host ↔ host nor one of several valid pairs: the wait of `waitMs` applies
  // (the host ↔ host and several-valid cases are the stopping criteria of the next test).
  const best = pair(1, 900, 'succeeded', ['host', 'srflx']);
  for (const st of ['waiting', 'in-progress', 'frozen'] as const) {
    const higher = pair(2, 5000, st);
    const d = n.decide([higher, best], [best], 300);
    t.equal(d.nominate, undefined, `higher pair ${st}: no nomination yet`);
    t.equal(d.recheckInMs, 700, `higher pair ${st}: ask again when waitMs (1000) since first valid has passed`);
  }
  const higher = pair(2, 5000, 'in-progress');
  t.equal(n.decide([higher, best], [best], 0).recheckInMs, 1000, 'recheck after the whole wait at time 0');
  t.equal(n.decide([higher, best], [best], 999).recheckInMs, 1, 'one ms before the deadline');
  t.equal(n.decide([higher, best], [best], 1000).nominate, best, 'at waitMs: nominate anyway');
  t.equal(n.decide([higher, best], [best], 5000).nominate, best, 'after waitMs: nominate anyway');
  t.equal(n.decide([higher, best], [best], 5000).recheckInMs, undefined, 'no recheck once nominating');
  // Once the higher pair itself has succeeded (and is valid), it is the one nominated.
  higher.state = 'succeeded';
  higher.valid = true;
  t.equal(n.decide([higher, best], [higher, best], 10).nominate, higher, 'the higher pair succeeded: it is nominated');

  t.equal(n.decide([higher, best], [higher, best], 10).recheckInMs, undefined, 'no recheck then');
  higher.state = 'in-progress';
  higher.valid = false;

  const zero = new RegularControlling(0);
  t.equal(zero.decide([pair(2, 5000, 'waiting'), best], [best], 0).nominate, best, 'waitMs 0: nominate the first valid pair');
});

// §8.1.1 leaves the stopping criterion to the agent. lib/core/nomination.ts: a direct (unrelayed) best pair is
// nominated at once when it is host ↔ host or not the only valid pair (libnice's criterion); a relayed best
// pair waits for direct pairs of higher priority to be sent at least 3 times, at most 3 × waitMs.
t.test('regular controlling: stopping criteria by pair type (direct, host ↔ host, relayed)', async (t) => {
  const n = new RegularControlling(1000);
  const higher = pair(2, 5000, 'in-progress');
  const hostHost = pair(1, 900, 'succeeded');
  t.equal(n.decide([higher, hostHost], [hostHost], 0).nominate, hostHost, 'host ↔ host: at once, a better pair pending or not');
  const srflx = pair(3, 900, 'succeeded', ['host', 'srflx']);
  const other = pair(4, 800, 'succeeded', ['host', 'prflx']);
  t.equal(n.decide([higher, srflx], [srflx], 0).nominate, undefined, 'host ↔ srflx, the only valid pair: waits');
  t.equal(n.decide([higher, srflx, other], [srflx, other], 0).nominate, srflx, 'host ↔ srflx with a second valid pair: at once');

  for (const types of [['relay', 'host'], ['host', 'relay'], ['relay', 'relay']] as const) {
    const relayed = pair(5, 900, 'succeeded', [...types]);
    const name = `${types[0]} ↔ ${types[1]}`;
    const other2 = pair(6, 800, 'succeeded');
    t.equal(n.decide([higher, relayed, other2], [relayed, other2], 0).nominate, undefined, `${name}: not at once, even with a second valid pair`);
    // A direct pair above it, sent fewer than 3 times: wait up to 3 × waitMs.
    higher.counters.requestsSent = 1;
    t.strictSame(n.decide([higher, relayed], [relayed], 300), { recheckInMs: 700 }, `${name}: before waitMs, recheck at waitMs`);
    t.equal(n.decide([higher, relayed], [relayed], 1000).nominate, undefined, `${name}: at waitMs, the direct pair is still young: waits`);
    t.strictSame(n.decide([higher, relayed], [relayed], 1000), { recheckInMs: 100 }, `${name}: and looks again 100 ms later`);
    t.strictSame(n.decide([higher, relayed], [relayed], 2950), { recheckInMs: 50 }, `${name}: never beyond 3 × waitMs`);
    t.equal(n.decide([higher, relayed], [relayed], 3000).nominate, relayed, `${name}: at 3 × waitMs: nominated anyway`);
    // Sent 3 times: nominated at waitMs.
    higher.counters.requestsSent = 3;
    t.equal(n.decide([higher, relayed], [relayed], 999).nominate, undefined, `${name}: before waitMs still waits`);
    t.equal(n.decide([higher, relayed], [relayed], 1000).nominate, relayed, `${name}: direct pair sent 3 times: nominated at waitMs`);
    // The peer's checks came in on the direct pair above (it works one way at least): wait up to 10 × waitMs.
    higher.counters.requestsReceived = 1;
    t.equal(n.decide([higher, relayed], [relayed], 9000).nominate, undefined, `${name}: the peer's checks come in on the direct pair: still waits at 9 × waitMs`);
    t.equal(n.decide([higher, relayed], [relayed], 10_000).nominate, relayed, `${name}: at 10 × waitMs: nominated anyway`);
    // Its check lost every transmission and it got one more transaction: up to 20 × waitMs.
    higher.retried = true;
    t.equal(n.decide([higher, relayed], [relayed], 19_000).nominate, undefined, `${name}: on its second transaction: still waits at 19 × waitMs`);
    t.equal(n.decide([higher, relayed], [relayed], 20_000).nominate, relayed, `${name}: at 20 × waitMs: nominated anyway`);
    higher.retried = false;
    higher.counters.requestsReceived = 0;
    // A higher *relayed* pending pair does not hold it beyond waitMs.
    higher.counters.requestsSent = 0;
    const higherRelayed = pair(7, 5000, 'waiting', ['relay', 'host']);
    t.equal(n.decide([higherRelayed, relayed], [relayed], 1000).nominate, relayed, `${name}: only relayed pairs above: nominated at waitMs`);
    t.equal(n.decide([relayed], [relayed], 0).nominate, relayed, `${name}: nothing better pending: at once`);
  }
});

t.test('regular controlling: nothing while a pair is already nominated or nominating (§8.1.1)', async (t) => {
  const n = new RegularControlling(1000);
  const best = pair(1, 900, 'succeeded');
  const other = pair(2, 500, 'succeeded');
  other.nominating = true;
  t.strictSame(n.decide([best, other], [best, other], 5000), {}, 'a nomination is in flight (even on a lower pair)');
  other.nominating = false;
  other.nominated = true;
  t.strictSame(n.decide([best, other], [best, other], 5000), {}, 'a pair is already nominated');
  other.nominated = false;
  t.equal(n.decide([best, other], [best, other], 5000).nominate, best, 'control: without them it nominates');
  // §7.2.5.3.2 / §8.1.1: the check repeated for a nomination is on the generating pair, which is in the
  // checklist but not in the valid list when the valid pair has a peer-reflexive local candidate.
  const generating = pair(3, 800, 'succeeded');
  const prflxValid = pair(4, 800, 'succeeded');
  prflxValid.inChecklist = false;
  prflxValid.valid = true;
  generating.validPairId = prflxValid.id;
  generating.nominating = true;
  t.strictSame(n.decide([best, generating, other], [best, prflxValid, other], 5000), {},
    'a nomination in flight on a checklist pair whose valid pair has a prflx local candidate');
  // USE-CANDIDATE only on the nomination check.
  t.equal(n.useCandidate(best), false, 'ordinary check: no USE-CANDIDATE');
  best.nominating = true;
  t.equal(n.useCandidate(best), true, 'nomination check: USE-CANDIDATE');
});

// RFC 5245 §8.1.1.2 aggressive nomination: every check carries USE-CANDIDATE; no separate nomination step.
t.test('aggressive controlling: always USE-CANDIDATE, never a separate nomination', async (t) => {
  const n: Role = new AggressiveControlling();
  t.equal(n.controlling, true);
  t.equal(n.mode, 'aggressive');
  t.equal(n.followsUseCandidate, false, 'the controlling side does not obey USE-CANDIDATE');
  const p = pair(1, 900, 'waiting');
  t.equal(n.useCandidate(p), true, 'ordinary check carries USE-CANDIDATE');
  p.state = 'succeeded';
  t.equal(n.useCandidate(p), true, 'whatever the state');
  t.strictSame(n.decide([p], [p], 100000), {}, 'decide() never nominates separately');
});

// RFC 8445 §7.3.1.5 / §8.1.1: the controlled agent never nominates.
t.test('controlled: never nominates, never USE-CANDIDATE (§8.1.1)', async (t) => {
  for (const mode of ['regular', 'aggressive'] as const) {
    const n: Role = new Controlled(mode);
    t.equal(n.controlling, false);
    t.equal(n.mode, mode);
    t.equal(n.followsUseCandidate, true, `${mode}: USE-CANDIDATE in the peer's requests nominates (§7.3.1.5)`);
    const p = pair(1, 900, 'succeeded');
    p.valid = true;
    p.nominating = true;
    t.equal(n.useCandidate(p), false, `${mode}: no USE-CANDIDATE even on a 'nominating' pair`);
    t.strictSame(n.decide([p], [p], 100000), {}, `${mode}: no nomination`);
  }
});

t.test('createRole picks the strategy for role and mode', async (t) => {
  const reg = createRole(true, 'regular', 1234);
  t.ok(reg instanceof RegularControlling, 'controlling regular');
  t.equal((reg as RegularControlling).waitMs, 1234, 'with its wait');
  t.ok(createRole(true, 'aggressive', 1) instanceof AggressiveControlling, 'controlling aggressive');
  const c1 = createRole(false, 'aggressive', 1);
  t.ok(c1 instanceof Controlled, 'controlled aggressive');
  t.equal(c1.mode, 'aggressive', 'keeps the mode');
  t.ok(createRole(false, 'regular', 1) instanceof Controlled, 'controlled regular');
});
