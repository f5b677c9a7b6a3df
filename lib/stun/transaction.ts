/**
 * STUN client transactions over UDP, RFC 8489 §6.2.1: retransmit with a
 * doubling RTO (capped), give up after the configured count. Timers come from
 * the agent's scheduler, so a transaction owns no timer of its own.
 */
import type { Scheduler, ScheduledTask } from '../scheduler.js';

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

export interface TransactionHandlers {
  /** Sends (or re-sends) the request. */
  transmit(): void;
  /** No response after the last wait. */
  timeout(): void;
}

export class Transaction {
  readonly id: string;
  readonly waits: readonly number[];
  attempts = 0;
  #task: ScheduledTask | undefined;
  #h: TransactionHandlers;
  #sched: Scheduler;
  #done = false;

  constructor(id: string, waits: readonly number[], sched: Scheduler, h: TransactionHandlers) {
    this.id = id;
    this.waits = waits;
    this.#sched = sched;
    this.#h = h;
  }

  start(): void {
    this.#send();
  }

  get done(): boolean {
    return this.#done;
  }

  #send(): void {
    if (this.#done) return;
    this.#h.transmit();
    const wait = this.waits[this.attempts++]!;
    this.#task = this.#sched.after(wait, () => {
      if (this.attempts >= this.waits.length) {
        this.#done = true;
        this.#h.timeout();
      } else this.#send();
    });
  }

  /** Stops retransmitting (a response arrived, or the pair is gone). */
  finish(): void {
    this.#done = true;
    this.#task?.cancel();
    this.#task = undefined;
  }
}
