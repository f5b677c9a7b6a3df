/**
 * Between an Agent and an SDP description: describe a local stream as an
 * `m=` section (credentials, candidates, default destination), and hand a
 * peer's section to a stream (credentials, candidates, end-of-candidates),
 * as libnice's `nice_agent_generate_local_sdp` / `nice_agent_parse_remote_sdp`
 * do with their own SDP dialect.
 */
import type { Agent } from '../agent.js';
import type { Candidate } from '../core/candidate.js';
import { InvalidArgumentError, UnknownStreamError } from '../errors.js';
import { defaultCandidate } from './generate.js';
import type { IceDescription, IceStream, SdpAddress } from './types.js';

export interface DescribeOptions {
  /** `a=mid`, by which trickled candidates name the section (RFC 8840). */
  mid?: string;
  /** `m=` media type; `application` by default. */
  media?: string;
  /** `m=` protocol; `UDP` by default (RFC 8866 §5.14: an unspecified protocol over UDP). */
  protocol?: string;
  /** `m=` formats; `['ice-agent']` by default, since the line needs one. */
  formats?: string[];
  /** `a=ice-options`; `['trickle']` when the agent has `iceTrickle` (RFC 8840), else none. */
  options?: string[];
  /** Write `a=end-of-candidates`: gathering is done and every candidate is in the description (RFC 8840). */
  endOfCandidates?: boolean;
  /** Further attributes, verbatim without `a=` (`setup:actpass`, `fingerprint:...`). */
  attributes?: string[];
}

/** How many components a stream has: the Agent tells it only by refusing the first id past the last. */
export function componentCount(agent: Agent, streamId: number): number {
  for (let n = 0; ; n++) {
    try {
      agent.getComponentState(streamId, n + 1);
    } catch (err) {
      if (err instanceof UnknownStreamError && err.componentId !== undefined) return n;
      throw err;
    }
  }
}

/** Only the fields of the candidate-attribute grammar (RFC 8839 §5.1): a local candidate's base and stream id are not signalled. */
function wire(c: Candidate): Candidate {
  const w: Candidate = { type: c.type, transport: c.transport, foundation: c.foundation, component: c.component, priority: c.priority, address: c.address, port: c.port };
  if (c.relatedAddress !== undefined) w.relatedAddress = c.relatedAddress;
  if (c.relatedPort !== undefined) w.relatedPort = c.relatedPort;
  if (c.tcpType !== undefined) w.tcpType = c.tcpType;
  if (c.extensions !== undefined) w.extensions = c.extensions.map(([k, v]) => [k, v]);
  return w;
}

/**
 * The default destination of a component: once a pair is selected, its
 * local candidate (RFC 8839 §4.4: what a subsequent offer carries); before,
 * the default candidate (RFC 8445 §5.1.4); with none gathered yet (trickle),
 * `0.0.0.0` port 9 (RFC 8840).
 */
function destination(agent: Agent, streamId: number, component: number, candidates: readonly Candidate[]): SdpAddress {
  const c = agent.getSelectedPair(streamId, component)?.local ?? defaultCandidate(candidates, component);
  return c ? { address: c.address, port: c.port } : { address: '0.0.0.0', port: 9 };
}

/**
 * One `m=` section for a local stream: its credentials, the local
 * candidates gathered so far for every component, and the default
 * destinations (`a=rtcp` for component 2, RFC 3605).
 */
export function describeStream(agent: Agent, streamId: number, opts: DescribeOptions = {}): IceStream {
  const components = componentCount(agent, streamId);
  const { ufrag, pwd } = agent.getLocalCredentials(streamId);
  const candidates: Candidate[] = [];
  for (let c = 1; c <= components; c++) candidates.push(...agent.getLocalCandidates(streamId, c).map(wire));
  const stream: IceStream = {
    media: opts.media ?? 'application',
    protocol: opts.protocol ?? 'UDP',
    formats: opts.formats ?? ['ice-agent'],
    ufrag,
    pwd,
    options: opts.options ?? (agent.options.iceTrickle ? ['trickle'] : []),
    candidates,
    endOfCandidates: opts.endOfCandidates ?? false,
    iceMismatch: false,
    components,
    defaultAddress: destination(agent, streamId, 1, candidates),
    attributes: opts.attributes ?? [],
    lines: [],
  };
  if (opts.mid !== undefined) stream.mid = opts.mid;
  if (components >= 2) stream.rtcp = destination(agent, streamId, 2, candidates);
  return stream;
}

/**
 * A whole description of some of an agent's streams, one `m=` section each,
 * in the order given; `a=ice-lite` for a lite agent (RFC 8839 §5.3).
 */
export function describeAgent(agent: Agent, sections: ReadonlyArray<DescribeOptions & { streamId: number }>): IceDescription {
  return { iceLite: agent.options.iceLite, options: [], attributes: [], streams: sections.map(({ streamId, ...o }) => describeStream(agent, streamId, o)) };
}

/**
 * Hands one `m=` section of a peer's description to a local stream: the
 * remote credentials (new ones on a running stream are an ICE restart,
 * RFC 8445 §9), the candidates of every component the stream has (those of
 * other components are unused: with `a=rtcp-mux`, RTCP rides on component 1,
 * RFC 5761), and `peerCandidateGatheringDone` for `a=end-of-candidates`.
 * `section` picks the `m=` section by index or by mid (0 by default).
 * Refused before anything changes: a section that is not there,
 * `a=ice-mismatch`, no credentials, or a lite peer of a full agent that is
 * not controlling. Returns the number of remote candidates added.
 */
export function applyDescription(agent: Agent, streamId: number, desc: IceDescription, section: number | string = 0): number {
  const stream = typeof section === 'number' ? desc.streams[section] : desc.streams.find((s) => s.mid === section);
  if (stream === undefined) throw new InvalidArgumentError('section', `no m= section ${typeof section === 'number' ? section : `with mid "${section}"`}`);
  // RFC 8839 §5.3: the peer fell back to its default destination; ICE is not in use for this stream.
  if (stream.iceMismatch) throw new InvalidArgumentError('desc', 'the peer signalled a=ice-mismatch: ICE is not in use for this stream (RFC 8839 §5.3)');
  if (stream.ufrag === undefined || stream.pwd === undefined) throw new InvalidArgumentError('desc', 'the m= section has no ice-ufrag and ice-pwd (RFC 8839 §5.4)');
  // RFC 8445 §6.1.1: against a lite peer, a full agent is the controlling one; a lite peer never takes that role.
  if (desc.iceLite && !agent.options.iceLite && !agent.controllingMode) {
    throw new InvalidArgumentError('desc', 'the peer is ICE-lite: this full agent must be controlling (RFC 8445 §6.1.1)');
  }
  agent.setRemoteCredentials(streamId, stream.ufrag, stream.pwd);
  let added = 0;
  const components = Math.min(componentCount(agent, streamId), stream.components);
  for (let c = 1; c <= components; c++) {
    const list = stream.candidates.filter((x) => x.component === c);
    if (list.length > 0) added += agent.setRemoteCandidates(streamId, c, list);
  }
  if (stream.endOfCandidates) agent.peerCandidateGatheringDone(streamId);
  return added;
}
