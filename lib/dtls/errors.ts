/**
 * The typed error of the DTLS layer, and the TLS alert registry (RFC 5246
 * §7.2, RFC 4279, RFC 8446 §6) it names alerts with.
 */
import { IceError } from '../errors.js';

/**
 * Why a DTLS session did not start or ended:
 * - `handshake`: the handshake failed on our side (the server's Finished did
 *   not verify, an unsupported key exchange, a malformed record) or the
 *   server went silent right after our Finished, which is how DTLS servers
 *   answer a wrong PSK or identity (they drop records that fail to decrypt,
 *   RFC 6347 §4.1.2.7, instead of sending an alert);
 * - `alert`: the peer sent a fatal alert (`alertCode`, `alertName`);
 * - `timeout`: no complete handshake within `timeout` ms;
 * - `aborted`: the AbortSignal fired during the handshake;
 * - `ice-failed`: the component failed (every pair failed);
 * - `consent-lost`: RFC 7675 consent was lost on the selected pair;
 * - `closed`: the component socket, the stream or the agent was closed.
 */
export type DtlsFailure = 'handshake' | 'alert' | 'timeout' | 'aborted' | 'ice-failed' | 'consent-lost' | 'closed';

/** TLS AlertDescription values by name (RFC 5246 §7.2, RFC 4279 §2 for PSK, RFC 8446 §6). */
export const TLS_ALERTS: Readonly<Record<string, number>> = Object.freeze({
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  decryption_failed: 21,
  record_overflow: 22,
  decompression_failure: 30,
  handshake_failure: 40,
  no_certificate: 41,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  export_restriction: 60,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  no_renegotiation: 100,
  missing_extension: 109,
  unsupported_extension: 110,
  certificate_unobtainable: 111,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  bad_certificate_hash_value: 114,
  unknown_psk_identity: 115,
  certificate_required: 116,
  no_application_protocol: 120,
});

const ALERT_NAMES = new Map(Object.entries(TLS_ALERTS).map(([name, code]) => [code, name]));

/** The registry name of an alert code (`40` → `handshake_failure`), or `alert N` for an unknown one. */
export function alertName(code: number): string {
  return ALERT_NAMES.get(code) ?? `alert ${code}`;
}

/** The code of an alert name as node-dtls-client spells it (`bad_certificate_hash_value_RESERVED` included). */
export function alertCode(name: string): number | undefined {
  return TLS_ALERTS[name.replace(/_RESERVED$/, '')];
}

export interface DtlsErrorDetails {
  streamId: number;
  componentId: number;
  /** The alert that ended the session, if one did. */
  alertCode?: number;
  /** Who sent that alert: the peer (reason `alert`) or we (reason `handshake`). */
  alertFrom?: 'peer' | 'local';
  cause?: unknown;
}

/**
 * A DTLS session over an ICE component did not start or ended abnormally.
 * `reason` says why; `alertCode`/`alertName` name the TLS alert when there
 * was one (e.g. 40 `handshake_failure`, 115 `unknown_psk_identity`), and
 * `alertFrom` who sent it. `code` is `ERR_ICE_DTLS`.
 */
export class DtlsError extends IceError {
  readonly reason: DtlsFailure;
  readonly streamId: number;
  readonly componentId: number;
  readonly alertCode: number | undefined;
  readonly alertName: string | undefined;
  readonly alertFrom: 'peer' | 'local' | undefined;

  constructor(reason: DtlsFailure, message: string, details: DtlsErrorDetails) {
    const alert = details.alertCode !== undefined ? ` (alert ${details.alertCode} ${alertName(details.alertCode)})` : '';
    super('ERR_ICE_DTLS', `DTLS on stream ${details.streamId} component ${details.componentId}: ${message}${alert}`);
    if (details.cause !== undefined) (this as { cause?: unknown }).cause = details.cause;
    this.reason = reason;
    this.streamId = details.streamId;
    this.componentId = details.componentId;
    this.alertCode = details.alertCode;
    this.alertName = details.alertCode !== undefined ? alertName(details.alertCode) : undefined;
    this.alertFrom = details.alertCode !== undefined ? (details.alertFrom ?? (reason === 'alert' ? 'peer' : 'local')) : undefined;
  }
}
