/**
 * Typed errors. Every error a caller can cause carries the name of the field
 * (option, argument, candidate field) that was wrong, so that a program can
 * react to it without parsing messages.
 */

/** A value as error messages show it; unlike JSON.stringify it never throws (bigint, cycles). */
export function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    // A BigInt inside, a cycle, or an object without a prototype (no toString).
    try {
      return String(v);
    } catch {
      return Object.prototype.toString.call(v);
    }
  }
}

/** Base class of every error this library throws on purpose. */
export class IceError extends Error {
  /** Stable machine-readable code, e.g. `ERR_ICE_INVALID_OPTION`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An Agent option was unknown or had a bad value. */
export class InvalidOptionError extends IceError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('ERR_ICE_INVALID_OPTION', `option "${option}": ${message}`);
    this.option = option;
  }
}

/** A method argument was out of range or of the wrong shape. */
export class InvalidArgumentError extends IceError {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super('ERR_ICE_INVALID_ARGUMENT', `argument "${argument}": ${message}`);
    this.argument = argument;
  }
}

/** A candidate-attribute string (RFC 8839 §5.1) did not parse. */
export class CandidateParseError extends IceError {
  /** The grammar field that was wrong: `foundation`, `component`, `transport`, `priority`, `address`, `port`, `typ`, `raddr`, `rport`, `tcptype`, `extension`, or `candidate` for the whole string. */
  readonly field: string;
  readonly input: string;
  constructor(field: string, input: string, message: string) {
    super('ERR_ICE_CANDIDATE_PARSE', `candidate ${field}: ${message}`);
    this.field = field;
    this.input = input;
  }
}

/** No stream (or component) with that id exists on this agent. */
export class UnknownStreamError extends IceError {
  readonly streamId: number;
  readonly componentId: number | undefined;
  constructor(streamId: number, componentId?: number) {
    super(
      'ERR_ICE_UNKNOWN_STREAM',
      componentId === undefined
        ? `no stream with id ${streamId}`
        : `no component ${componentId} in stream ${streamId}`,
    );
    this.streamId = streamId;
    this.componentId = componentId;
  }
}

/** The call is not valid in the agent's current state (e.g. after close()). */
export class InvalidStateError extends IceError {
  constructor(message: string) {
    super('ERR_ICE_INVALID_STATE', message);
  }
}

/**
 * A STUN or TURN server refused, failed or did not answer. `code` is
 * `ERR_ICE_SERVER` (`ERR_ICE_TURN` for a TurnError); the STUN error code the
 * server sent (401, 403, 437, 441, 486, 508 ...) is `stunCode`, undefined for a
 * timeout, a refused connection, a failed name lookup or a lost allocation.
 */
export class ServerError extends IceError {
  /** Which kind of server: a STUN server (server-reflexive gathering) or a TURN server. */
  readonly kind: 'stun' | 'turn';
  /** The server's URL as configured, e.g. `turn:192.0.2.1:3478?transport=tcp`. */
  readonly server: string;
  /** STUN error code from the server's error response, if there was one. */
  readonly stunCode: number | undefined;
  /** What went wrong, in words. */
  readonly reason: string;
  constructor(kind: 'stun' | 'turn', server: string, stunCode: number | undefined, reason: string, code = 'ERR_ICE_SERVER') {
    super(code, `${kind.toUpperCase()} server ${server}: ${stunCode !== undefined ? `${stunCode} ` : ''}${reason}`);
    this.kind = kind;
    this.server = server;
    this.stunCode = stunCode;
    this.reason = reason;
  }
}

/** A TURN server refused, failed or did not answer (RFC 8656). */
export class TurnError extends ServerError {
  constructor(server: string, stunCode: number | undefined, reason: string) {
    super('turn', server, stunCode, reason, 'ERR_ICE_TURN');
  }
}

export type ConnectionFailure = 'failed' | 'consent-lost' | 'aborted' | 'timeout' | 'closed' | 'removed';

/**
 * A stream did not connect (`agent.connect()`), or a component it waited on
 * failed: `reason` says why, `componentId` which component (undefined when
 * the whole stream is concerned: abort, timeout, close).
 */
export class ConnectionError extends IceError {
  readonly streamId: number;
  readonly componentId: number | undefined;
  readonly reason: ConnectionFailure;
  constructor(streamId: number, componentId: number | undefined, reason: ConnectionFailure, message: string) {
    super('ERR_ICE_CONNECTION', `stream ${streamId}${componentId !== undefined ? ` component ${componentId}` : ''}: ${message}`);
    this.streamId = streamId;
    this.componentId = componentId;
    this.reason = reason;
  }
}

/**
 * Gathering could not use a local address: binding failed (the address is
 * not on this host, a `portRange` with no free port, ...). Gathering goes on
 * with the other addresses; `code` is the system's error code.
 */
export class GatheringError extends IceError {
  readonly streamId: number;
  readonly componentId: number;
  readonly address: string;
  readonly systemCode: string | undefined;
  constructor(streamId: number, componentId: number, address: string, systemCode: string | undefined, reason: string) {
    super('ERR_ICE_GATHERING', `stream ${streamId} component ${componentId}: cannot use ${address}: ${reason}`);
    this.streamId = streamId;
    this.componentId = componentId;
    this.address = address;
    this.systemCode = systemCode;
  }
}
