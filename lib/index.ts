/** ice-agent: an ICE (RFC 8445) agent for Node.js, modelled on libnice. */
export { Agent, type AgentEvents, type SelectedPair, type PairInfo, type RecvCallback, type ConnectOptions } from './agent.js';
export { ComponentSocket, type ComponentSocketEvents, type RemoteInfo, type AddressInfo } from './socket.js';
export type { AgentOptions, PortRange, ResolvedOptions, TurnServer } from './options.js';
export { DEFAULT_OPTIONS } from './options.js';
export type { Candidate, CandidateType, TransportProtocol, TcpType, TransportAddress } from './core/candidate.js';
export { computePriority, TYPE_PREFERENCE } from './core/candidate.js';
export { parseCandidate, serializeCandidate } from './core/candidate-attribute.js';
export { pairPriority } from './core/pair.js';
export type { ComponentState, PairState, Credentials } from './core/state.js';
export type { NominationMode } from './core/nomination.js';
export type { AgentStats, DropCounters } from './stats.js';
export {
  IceError, InvalidOptionError, InvalidArgumentError, CandidateParseError, UnknownStreamError, InvalidStateError,
  ServerError, TurnError, ConnectionError, GatheringError, type ConnectionFailure,
} from './errors.js';
export { parseIceServerUrl, type IceServerUrl } from './turn/url.js';
export { TurnClient, type TurnClientOptions, type TurnAllocation, type TurnStats } from './turn/client.js';
export type {
  Network, DatagramSocket, DatagramBindOptions, StreamSocket, StreamListener, StreamConnectOptions, InterfaceAddress, TimerHandle,
} from './transport/network.js';
export { nodeNetwork } from './transport/node-network.js';
export { UdpMux, type UdpMuxOptions, type UdpMuxStats } from './transport/mux.js';
export type { StreamStats, ComponentStats, CandidatePairStats, CandidateStats } from './core/report.js';
export type { Logger, LogLevel } from './log.js';
export { SessionError, SESSION_VERSION, type SessionSnapshot } from './core/session.js';
export { SdpParseError } from './sdp/error.js';
export { DtlsSocket, DtlsError, type DtlsConnectOptions, type DtlsSocketEvents, type DtlsSocketStats, type DtlsFailure, type DtlsCipherSuite, type DtlsTransport } from './dtls/index.js';
