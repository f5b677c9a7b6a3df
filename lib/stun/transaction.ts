/**
 * STUN client retransmissions over UDP, RFC 8489 §6.2.1: a doubling RTO,
 * capped, for a configured number of retransmissions. The schedule only:
 * the core keeps each transaction's next deadline in its state.
 */

/**
 * The waits after each transmission: RTO, 2·RTO, 4·RTO ... capped at `maxRto`;
 * the last entry is how long to wait for a response after the last retransmission.
 */
export function retransmitWaits(initialRto: number, retransmissions: number, maxRto: number): readonly number[] {
  // Shared and frozen: every agent with the same options has the same schedule (a media server has thousands).
  const key = `${initialRto}/${retransmissions}/${maxRto}`;
  let waits = WAITS.get(key);
  if (waits) return waits;
  const list: number[] = [];
  let rto = initialRto;
  for (let i = 0; i <= retransmissions; i++) {
    list.push(Math.min(rto, maxRto));
    rto *= 2;
  }
  waits = Object.freeze(list);
  if (WAITS.size < 64) WAITS.set(key, waits);
  return waits;
}

const WAITS = new Map<string, readonly number[]>();
