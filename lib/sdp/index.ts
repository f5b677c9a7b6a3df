/**
 * SDP helpers for ICE (RFC 8839 on RFC 8866, trickle ICE's RFC 8840): parse
 * and generate the ICE part of an SDP, describe an Agent's stream as an
 * `m=` section and apply a peer's section to a stream.
 */
export type { IceDescription, IceStream, SdpAddress, SdpOrigin, SdpSession } from './types.js';
export { SdpParseError } from './error.js';
export { parseSdp, type ParseOptions } from './parse.js';
export { generateSdp, defaultCandidate, type GenerateOptions } from './generate.js';
export { describeStream, describeAgent, applyDescription, componentCount, type DescribeOptions } from './agent.js';
