/**
 * A lite agent's answer to its peer's consent request on the selected pair:
 * the one input a media server handles thousands of times a second, and the
 * whole of a lite session's steady state (RFC 8445 §2.5: it sends nothing of
 * its own; RFC 7675: the full peer's requests keep consent).
 *
 * `answerConsent` takes the request only when nothing about it can change
 * more than the consent time and the counters: a Binding request, FINGERPRINT
 * verified by the caller, from the selected pair's remote address on its
 * local transport, naming the current local ufrag, ICE-CONTROLLING (no role
 * conflict possible), no attribute it would have to refuse or act on
 * (unknown comprehension-required ones, a USE-CANDIDATE or NOMINATION that
 * would nominate anew, anything after MESSAGE-INTEGRITY but FINGERPRINT), and
 * MESSAGE-INTEGRITY good. It then does exactly what the general path
 * (lib/core/check.ts onRequest, liteRequest) does for such a request, in one
 * walk over the attributes and without the decoded message; anything else it
 * leaves, untouched, to the general path, which counts and answers errors.
 * spec/lite-answer.test.ts holds the two to the same responses and state.
 */
import { ATTR, BINDING_REQUEST, HEADER_LENGTH, usernameNamesUfrag, verifyIntegrityAt } from '../stun/message.js';
import { encodeBindingSuccessTo } from '../stun/binding.js';
import { isAddressKey, type TransportAddress } from '../transport/address.js';
import { pairById, pairFrom } from './checklist.js';
import type { Ctx } from './context.js';
import { transmitVia } from './relay.js';
import type { TransportRecord } from './state.js';

/** For the spec: `enabled` false sends every request down the general path; `answered` counts the requests taken here. */
export const liteAnswer = { enabled: true, answered: 0 };

/** True if the request was answered here; false, with nothing changed, for the general path. */
export function answerConsent(ctx: Ctx, t: TransportRecord, from: TransportAddress, data: Buffer): boolean {
  if (!liteAnswer.enabled || ctx.role.sendsChecks || t.kind !== 'host' || data.readUInt16BE(0) !== BINDING_REQUEST) return false;
  const d = ctx.d;
  const s = d.streams.get(t.streamId);
  const c = s?.components.get(t.componentId);
  if (!s || !c || c.state !== 'ready' || c.selectedPairId === undefined || c.consent?.pairId !== c.selectedPairId) return false;
  const pair = pairById(s, c.selectedPairId);
  // The pair the general path would count this request on (pairFrom) must be the selected one, valid and nominated.
  if (!pair || !pair.nominated || !pair.valid || pair.state !== 'succeeded' || !s.initialRequestSeen) return false;
  if (pairFrom(s, t.id, from.address, from.port) !== pair) return false;
  const one = c.authorized.single;
  if (one === undefined || !isAddressKey(one, from.address, from.port)) return false;
  // The trace log writes what the general path writes: it runs when tracing is on.
  if (ctx.env.log.enabled('check', 'trace')) return false;
  let user = -1;
  let mi = -1;
  let priority = -1;
  let controlling = -1;
  let useCandidate = false;
  // One walk; a second copy of an attribute goes to the general path (it reads the first of each).
  for (let off = HEADER_LENGTH; off + 4 <= data.length;) {
    const type = data.readUInt16BE(off);
    const len = data.readUInt16BE(off + 2);
    if (off + 4 + len > data.length) return false;
    if (mi >= 0) {
      // After MESSAGE-INTEGRITY only FINGERPRINT (RFC 8489 §14.5): the general path ignores the rest.
      if (type !== ATTR.FINGERPRINT) return false;
    } else if (type === ATTR.USERNAME && user < 0) user = off;
    else if (type === ATTR.MESSAGE_INTEGRITY) mi = off;
    else if (type === ATTR.PRIORITY && priority < 0) priority = len === 4 ? data.readUInt32BE(off + 4) : 0;
    else if (type === ATTR.ICE_CONTROLLING && controlling < 0) controlling = len === 8 ? 1 : 0;
    // A nomination of the selected pair changes nothing once it is nominated, unless renomination counts it.
    else if (type === ATTR.USE_CANDIDATE && !useCandidate && !ctx.o.renomination) useCandidate = true;
    else if (type !== ATTR.SOFTWARE) return false; // ICE-CONTROLLED, NOMINATION, duplicates, the rest: the general path
    off += 4 + ((len + 3) & ~3);
  }
  if (user < 0 || mi < 0 || priority <= 0 || controlling !== 1) return false;
  if (!usernameNamesUfrag(data, user, s.local.ufrag)) return false;
  if (verifyIntegrityAt(data, mi, s.local.pwd) !== 'ok') return false;
  // What onRequest and liteRequest do for this request.
  d.stats.stunRequestsReceived++;
  d.stats.responsesSent++;
  transmitVia(ctx, t.id, from, encodeBindingSuccessTo(data, from.address, from.port, s.local.pwd));
  pair.counters.requestsReceived++;
  pair.counters.responsesSent++;
  s.remoteUsed = true;
  s.lastCheckAt = ctx.now;
  c.consent.lastResponseAt = ctx.now;
  liteAnswer.answered++;
  return true;
}
