/**
 * Logging an operator can follow: every line names its agent (and stream and
 * component where there is one), and goes either to the `debug` package, one
 * namespace per module (`ice-agent:check`, `ice-agent:gather` ...; silent
 * unless `DEBUG` enables them), or to an injected logger — any object with
 * `debug`/`info`/`warn`/`error` (and optionally `trace`), such as `console`,
 * pino or winston — filtered by `logLevel`.
 *
 * Levels: `error` (the agent cannot do what it was asked), `warn` (a problem
 * it goes around: a server that failed, an address it cannot bind, an input it
 * refused), `info` (the session's milestones: gathering done, selected pair,
 * state changes), `debug`, and `trace` (what libnice's debug output shows:
 * every candidate, pair and pair state change, every request and response
 * with its source, transaction id, role and USE-CANDIDATE, RTTs, consent
 * checks as such, nomination, and the reason for every failure).
 */
import createDebug, { type Debugger } from 'debug';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  /** Optional; trace lines go to `debug` when it is missing. */
  trace?(message: string): void;
}

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, silent: 5 };

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'silent'];

const namespaces = new Map<string, Debugger>();

function namespace(module: string): Debugger {
  let d = namespaces.get(module);
  if (!d) namespaces.set(module, (d = createDebug(`ice-agent:${module}`)));
  return d;
}

/** Where an agent's log lines go: what the core and the shell write to. */
export interface Log {
  /** Whether a line of `level` from `module` would go anywhere (so that callers build it only then). */
  enabled(module: string, level: Exclude<LogLevel, 'silent'>): boolean;
  write(module: string, level: Exclude<LogLevel, 'silent'>, text: string): void;
}

/** Log.enabled for an agent with this logger and level. */
export function logEnabled(logger: Logger | undefined, min: LogLevel, module: string, level: Exclude<LogLevel, 'silent'>): boolean {
  if (RANK[level] < RANK[min]) return false;
  return logger !== undefined || namespace(module).enabled;
}

/** Log.write for an agent with this id, logger and level: the id goes in front of every line. */
export function logWrite(agentId: string, logger: Logger | undefined, min: LogLevel, module: string, level: Exclude<LogLevel, 'silent'>, text: string): void {
  if (!logEnabled(logger, min, module, level)) return;
  const line = `[${agentId}] ${text}`;
  if (!logger) {
    namespace(module)(level === 'info' || level === 'debug' || level === 'trace' ? line : `${level.toUpperCase()} ${line}`);
    return;
  }
  try {
    if (level === 'trace') (logger.trace ?? logger.debug).call(logger, `${module}: ${line}`);
    else logger[level](`${module}: ${line}`);
  } catch {
    // A logger that throws must not take the agent down with it.
  }
}

/** One agent's log as an object of its own (the shell is its agent's Log itself). */
export class AgentLog implements Log {
  readonly agentId: string;
  readonly #logger: Logger | undefined;
  readonly #level: LogLevel;

  constructor(agentId: string, logger: Logger | undefined, level: LogLevel) {
    this.agentId = agentId;
    this.#logger = logger;
    this.#level = level;
  }

  enabled(module: string, level: Exclude<LogLevel, 'silent'>): boolean {
    return logEnabled(this.#logger, this.#level, module, level);
  }

  write(module: string, level: Exclude<LogLevel, 'silent'>, text: string): void {
    logWrite(this.agentId, this.#logger, this.#level, module, level, text);
  }
}
