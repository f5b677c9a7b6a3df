/**
 * Liveness of a selected pair: RFC 7675 consent freshness, and the RFC 8445
 * §11 keepalives used when consent freshness is off. Pure: the agent passes
 * times in and gets decisions out.
 *
 * The rules (also in the README):
 * - With consent freshness on, a Binding request goes out on the selected pair
 *   every `consentInterval` × a random factor in [0.8, 1.2] (RFC 7675 §5.1).
 *   With it off, a Binding indication goes out every `keepaliveInterval`
 *   (RFC 8445 §11), or a Binding request when `keepaliveConncheck` is set (as
 *   libnice's `keepalive-conncheck`), so that silence can be noticed.
 * - A component that sent requests and got no response for
 *   `disconnectedTimeout` goes `disconnected`; the first response after that
 *   brings it back to `ready`. Data is still sent while disconnected.
 * - With consent freshness on, no response for `consentTimeout` (30 s, RFC 7675
 *   §5.1) means consent is lost: `consent-lost` fires, the component goes
 *   `failed`, and `send` stops sending on that pair.
 */

/** RFC 7675 §5.1: the interval is randomised to 0.8-1.2 times the base, against synchronised bursts. */
export function consentDelay(interval: number, random: () => number = Math.random): number {
  return Math.round(interval * (0.8 + 0.4 * random()));
}

export type Liveness = 'alive' | 'disconnected' | 'expired';

export interface LivenessConfig {
  /** Whether responses are expected at all (consent or keepalive conncheck); indications get none. */
  expectResponses: boolean;
  consentFreshness: boolean;
  disconnectedTimeout: number;
  consentTimeout: number;
}

/** What the silence since the last response means. */
export function liveness(now: number, lastResponseAt: number, cfg: LivenessConfig): Liveness {
  if (!cfg.expectResponses) return 'alive';
  const silent = now - lastResponseAt;
  if (cfg.consentFreshness && silent >= cfg.consentTimeout) return 'expired';
  if (silent >= cfg.disconnectedTimeout) return 'disconnected';
  return 'alive';
}
