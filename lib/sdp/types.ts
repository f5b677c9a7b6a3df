/**
 * The ICE part of an SDP (RFC 8839, on RFC 8866 syntax) as plain data: what
 * `parseSdp` returns and `generateSdp` writes. Everything an ICE agent does
 * not use is kept verbatim (`attributes`, `lines`), so that a description
 * survives parse → generate → parse unchanged.
 */
import type { Candidate } from '../core/candidate.js';

/** The `o=` line (RFC 8866 §5.2), field by field, as written. */
export interface SdpOrigin {
  username: string;
  /** Digits; kept as a string since it may exceed 2^53. */
  sessionId: string;
  sessionVersion: string;
  netType: string;
  addrType: string;
  address: string;
}

/** The session header: everything of the session level that is not ICE. */
export interface SdpSession {
  origin: SdpOrigin;
  /** `s=` (RFC 8866 §5.3); `-` when there is none. */
  name: string;
  /** The `t=`, `r=` and `z=` lines, verbatim with their type letter, in order (RFC 8866 §5.9-§5.11). */
  timing: string[];
  /** Other session-level lines: `i=`, `u=`, `e=`, `p=`, `b=`, `k=`, verbatim with their type letter, in RFC 8866 order. */
  lines: string[];
}

/** A default destination (RFC 8839 §4.2.1.2): where a peer without ICE would send. */
export interface SdpAddress {
  /** IPv4, IPv6 or FQDN; `c=` says `IP6` for an IPv6 literal and `IP4` otherwise. */
  address: string;
  port: number;
}

/** One `m=` section, i.e. one ICE stream (RFC 8839 §4.2.1.1). */
export interface IceStream {
  /** `m=` media type: `audio`, `video`, `application` ... */
  media: string;
  /** `m=` transport protocol, e.g. `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`. */
  protocol: string;
  /** `m=` formats; empty only in a `partial` description (libnice writes none). */
  formats: string[];
  /** `m=<port>/<n>`, when given (RFC 8866 §5.14). */
  portCount?: number;
  /** `a=mid` (RFC 5888), which names the section to trickled candidates (RFC 8840). */
  mid?: string;
  /**
   * `a=ice-ufrag` / `a=ice-pwd` in force for this stream: the media-level
   * value, else the session-level one (RFC 8839 §5.4). Absent in a section
   * that does not use ICE (e.g. a rejected one).
   */
  ufrag?: string;
  pwd?: string;
  /** `a=ice-options` written at media level, in order (RFC 8839 §5.6); see also `IceDescription.options`. */
  options: string[];
  /** `a=candidate` lines of every component, in order. */
  candidates: Candidate[];
  /** `a=end-of-candidates` (RFC 8840), at media level or, for every stream, at session level. */
  endOfCandidates: boolean;
  /** `a=ice-mismatch` (RFC 8839 §5.3): the peer saw a default destination that is none of the candidates. */
  iceMismatch: boolean;
  /**
   * Components of the stream (RFC 8839 §4.2.2): 1 with `a=rtcp-mux`
   * (RFC 5761: RTP and RTCP share component 1; candidates of other
   * components are then unused); without it 2 for RTP or when `a=rtcp` is
   * present, else 1; and never fewer than the highest candidate component.
   */
  components: number;
  /** Default destination of component 1: the `c=` address and the `m=` port. `generateSdp` derives it from the candidates when absent. */
  defaultAddress?: SdpAddress;
  /** `a=rtcp` (RFC 3605): the default destination of component 2; the address is absent when only a port is given. */
  rtcp?: { port: number; address?: string };
  /** Attributes this module does not interpret, without `a=`, verbatim and in order (`rtpmap:111 opus/48000/2`). */
  attributes: string[];
  /** Other media-level lines: `i=`, `b=`, `k=`, verbatim with their type letter, in RFC 8866 order. */
  lines: string[];
}

/** The ICE view of a whole SDP. */
export interface IceDescription {
  /** `a=ice-lite` (RFC 8839 §5.3): the peer is a lite implementation and expects us to be controlling (RFC 8445 §6.1.1). */
  iceLite: boolean;
  /** Session-level `a=ice-ufrag` / `a=ice-pwd`, the default of every stream (RFC 8839 §5.4). */
  ufrag?: string;
  pwd?: string;
  /** Session-level `a=ice-options` tags, in order: `trickle` (RFC 8840), `ice2` (RFC 8445 §10), `renomination` ... */
  options: string[];
  /** Session-level attributes this module does not interpret, without `a=`, verbatim and in order (`group:BUNDLE 0 1`). */
  attributes: string[];
  /** One per `m=` section, in order: the index is the `m=` line index (`sdpMLineIndex`). */
  streams: IceStream[];
  /** The session header; absent in a `partial` description without one. */
  session?: SdpSession;
}
