/** ice-agent: an ICE (RFC 8445) agent for Node.js, modelled on libnice. */
export { Agent, type AgentEvents, type SelectedPair, type PairInfo } from './agent.js';
export type { AgentOptions, PortRange } from './options.js';
export { DEFAULT_OPTIONS } from './options.js';
export type { Candidate, CandidateType, TransportProtocol, TcpType, TransportAddress } from './candidate.js';
export { computePriority, TYPE_PREFERENCE } from './candidate.js';
export { parseCandidate, serializeCandidate } from './candidate-attribute.js';
export { pairPriority, type PairState } from './pair.js';
export type { ComponentState, RecvCallback } from './component.js';
export type { Credentials } from './stream.js';
export type { NominationMode } from './nomination.js';
export type { AgentStats, DropCounters } from './stats.js';
export {
  IceError, InvalidOptionError, InvalidArgumentError, CandidateParseError, UnknownStreamError, InvalidStateError,
  TurnError,
} from './errors.js';
export type { TurnServer } from './options.js';
export { parseIceServerUrl, type IceServerUrl } from './turn/url.js';
export { TurnClient, type TurnClientOptions, type TurnAllocation, type TurnStats } from './turn/client.js';
