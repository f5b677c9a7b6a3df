/** DTLS over an ICE component: a node-dtls-client (DTLS 1.2, PSK) client on the selected pair. */
export { connectDtls, DtlsSocket, DEFAULT_DTLS_TIMEOUT, type DtlsConnectOptions, type DtlsSocketEvents, type DtlsSocketStats } from './socket.js';
export { DtlsError, TLS_ALERTS, alertName, type DtlsFailure, type DtlsErrorDetails } from './errors.js';
export { isDtlsRecord, PSK_CIPHER_SUITES, DEFAULT_CIPHER_SUITES, type DtlsCipherSuite } from './records.js';
export type { DtlsTransport } from './shim.js';
