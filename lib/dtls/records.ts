/**
 * DTLS record framing, as far as the shim needs it: RFC 7983 demultiplexing
 * by the first byte, and a read of the plaintext (epoch 0) handshake records
 * so that a failed handshake can say how far it got.
 */

/**
 * RFC 7983 §7: a datagram whose first byte is 20–63 is DTLS (20 change_cipher_spec,
 * 21 alert, 22 handshake, 23 application_data, and the range reserved for more
 * content types); 0–3 is STUN, 64–79 TURN ChannelData, 128–191 RTP/RTCP, 16–19 ZRTP.
 */
export function isDtlsRecord(data: Uint8Array): boolean {
  const b = data[0];
  return b !== undefined && b >= 20 && b <= 63;
}

export const CONTENT_CHANGE_CIPHER_SPEC = 20;
export const CONTENT_ALERT = 21;
export const CONTENT_HANDSHAKE = 22;
export const CONTENT_APPLICATION_DATA = 23;

export const HS_CLIENT_HELLO = 1;
export const HS_SERVER_HELLO = 2;
export const HS_HELLO_VERIFY_REQUEST = 3;
export const HS_SERVER_KEY_EXCHANGE = 12;
export const HS_SERVER_HELLO_DONE = 14;
export const HS_CLIENT_KEY_EXCHANGE = 16;
export const HS_FINISHED = 20;

/** DTLSPlaintext/DTLSCiphertext header (RFC 6347 §4.1): type, version, epoch, sequence_number, length. */
const RECORD_HEADER = 13;
/** Handshake header (RFC 6347 §4.2.2): msg_type, length, message_seq, fragment_offset, fragment_length. */
const HANDSHAKE_HEADER = 12;

export interface RecordInfo {
  type: number;
  epoch: number;
  /** For a plaintext handshake record that starts a message: its msg_type. */
  handshakeType?: number;
  /** For a plaintext ServerHello: the chosen cipher suite. */
  cipherSuite?: number;
  /** For a plaintext alert: level (1 warning, 2 fatal) and description. */
  alertLevel?: number;
  alertDescription?: number;
}

/** The records of one datagram (a datagram may carry several, RFC 6347 §4.1.1); stops at the first truncated one. */
export function readRecords(data: Uint8Array): RecordInfo[] {
  const out: RecordInfo[] = [];
  let off = 0;
  while (off + RECORD_HEADER <= data.length) {
    const type = data[off]!;
    if (type < 20 || type > 63) break;
    const epoch = (data[off + 3]! << 8) | data[off + 4]!;
    const length = (data[off + 11]! << 8) | data[off + 12]!;
    const body = off + RECORD_HEADER;
    if (body + length > data.length) break;
    const r: RecordInfo = { type, epoch };
    if (epoch === 0 && type === CONTENT_HANDSHAKE && length >= HANDSHAKE_HEADER) {
      const fragmentOffset = (data[body + 6]! << 16) | (data[body + 7]! << 8) | data[body + 8]!;
      if (fragmentOffset === 0) {
        r.handshakeType = data[body];
        // ServerHello: server_version(2) random(32) session_id<0..32> cipher_suite(2)
        const hello = body + HANDSHAKE_HEADER;
        if (r.handshakeType === HS_SERVER_HELLO && hello + 35 <= body + length) {
          const sid = data[hello + 34]!;
          const cs = hello + 35 + sid;
          if (cs + 2 <= body + length) r.cipherSuite = (data[cs]! << 8) | data[cs + 1]!;
        }
      }
    } else if (epoch === 0 && type === CONTENT_ALERT && length >= 2) {
      r.alertLevel = data[body];
      r.alertDescription = data[body + 1];
    }
    out.push(r);
    off = body + length;
  }
  return out;
}

/**
 * The plain-PSK cipher suites node-dtls-client can negotiate (its other
 * suites need key exchanges it does not implement), by IANA code point.
 * 3DES is left out of the default offer (64-bit blocks, Sweet32).
 */
export const PSK_CIPHER_SUITES = {
  TLS_PSK_WITH_AES_128_GCM_SHA256: 0x00a8,
  TLS_PSK_WITH_AES_256_GCM_SHA384: 0x00a9,
  TLS_PSK_WITH_AES_128_CCM: 0xc0a4,
  TLS_PSK_WITH_AES_256_CCM: 0xc0a5,
  TLS_PSK_WITH_AES_128_CCM_8: 0xc0a8,
  TLS_PSK_WITH_AES_256_CCM_8: 0xc0a9,
  TLS_PSK_WITH_AES_128_CBC_SHA256: 0x00ae,
  TLS_PSK_WITH_AES_256_CBC_SHA384: 0x00af,
  TLS_PSK_WITH_AES_128_CBC_SHA: 0x008c,
  TLS_PSK_WITH_AES_256_CBC_SHA: 0x008d,
  TLS_PSK_WITH_3DES_EDE_CBC_SHA: 0x008b,
} as const;

export type DtlsCipherSuite = keyof typeof PSK_CIPHER_SUITES;

/** What connectDtls offers without `ciphers`: the AEAD suites first, then AES-CBC; no 3DES. */
export const DEFAULT_CIPHER_SUITES: readonly DtlsCipherSuite[] = Object.freeze(
  (Object.keys(PSK_CIPHER_SUITES) as DtlsCipherSuite[]).filter((n) => !n.includes('3DES')),
);

const SUITE_NAMES = new Map(Object.entries(PSK_CIPHER_SUITES).map(([name, id]) => [id as number, name]));

export function cipherSuiteName(id: number): string {
  return SUITE_NAMES.get(id) ?? `0x${id.toString(16).padStart(4, '0')}`;
}
