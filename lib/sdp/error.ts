/** The typed error of the SDP parser. */
import { IceError } from '../errors.js';

/** An SDP (RFC 8866) or its ICE attributes (RFC 8839) did not parse. */
export class SdpParseError extends IceError {
  /** 1-based line number of the offending line; 0 when the text as a whole is wrong (not a string, no `m=` line ...). */
  readonly line: number;
  /**
   * What was wrong: the line type (`v`, `o`, `s`, `t`, `c`, `m`, `b` ...) or
   * attribute name (`ice-ufrag`, `ice-pwd`, `ice-options`, `candidate`, `mid`,
   * `rtcp` ...), or `line` for a line that is not `<type>=<value>` at all.
   */
  readonly field: string;
  constructor(line: number, field: string, message: string, options?: { cause?: unknown }) {
    super('ERR_ICE_SDP_PARSE', `SDP line ${line} (${field}): ${message}`);
    this.line = line;
    this.field = field;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
