/**
 * STUN client retransmissions over UDP, RFC 8489 §6.2.1: a doubling RTO,
 * capped, for a configured number of retransmissions. The schedule only:
 * the core keeps each transaction's next deadline in its state.
 */

/**
 * The waits after each transmission: RTO, 2·RTO, 4·RTO ... capped at `maxRto`;
 * the last entry is how long to wait for a response after the last retransmission.
 */
export function retransmitWaits(initialRto: number, retransmissions: number, maxRto: number): number[] {
  const waits: number[] = [];
  let rto = initialRto;
  for (let i = 0; i <= retransmissions; i++) {
    waits.push(Math.min(rto, maxRto));
    rto *= 2;
  }
  return waits;
}
