/**
 * A component (RFC 8445 §2, libnice's NiceComponent): its sockets, local and
 * remote candidates, state, selected pair, and the receive path.
 */
import type { Candidate } from './candidate.js';
import type { CandidatePair } from './pair.js';
import type { PacketTransport, RemoteAddress } from './transport/transport.js';
import type { TurnServer } from './options.js';
import type { TurnClient } from './turn/client.js';
import type { ScheduledTask } from './scheduler.js';
import type { AgentStats } from './stats.js';

/** Component states, exactly libnice's NiceComponentState. */
export type ComponentState = 'disconnected' | 'gathering' | 'connecting' | 'connected' | 'ready' | 'failed';

/** The receive callback of `agent.attachRecv` (libnice's `nice_agent_attach_recv`). */
export type RecvCallback = (data: Buffer, from: { address: string; port: number }) => void;

export class Component {
  readonly id: number;
  readonly streamId: number;
  state: ComponentState = 'disconnected';
  localCandidates: Candidate[] = [];
  remoteCandidates: Candidate[] = [];
  transports: PacketTransport[] = [];
  /** TURN servers set for this component only (`setRelayInfo`). */
  relayServers: TurnServer[] = [];
  /** TURN clients still allocating, so close() can abandon them. */
  turnClients = new Set<TurnClient>();
  /** The nominated pair in use (libnice's selected pair). */
  selected: CandidatePair | undefined;
  /** Where `send` goes: the selected pair, or before nomination the best valid pair (as libnice does). */
  sendPair: CandidatePair | undefined;
  recv: RecvCallback | undefined;
  /** When the first pair of this component became valid (for regular nomination's wait). */
  firstValidAt: number | undefined;
  nominationTask: ScheduledTask | undefined;
  /** Consent checks or keepalives on the selected pair. */
  livenessTask: ScheduledTask | undefined;
  /** Trickle: fail the component if nothing new arrives by then. */
  trickleTask: ScheduledTask | undefined;
  /** Last response to a consent check or keepalive conncheck (or the selection time). */
  lastResponseAt = 0;
  /**
   * Remote addresses allowed to send application data: those of valid pairs and
   * those that sent us an authenticated check. Data from anyone else is dropped,
   * so guessing a port is not enough to inject.
   */
  readonly authorized = new Set<string>();
  #lastSrcAddress = '';
  #lastSrcPort = -1;
  readonly #stats: AgentStats;

  constructor(streamId: number, id: number, stats: AgentStats) {
    this.streamId = streamId;
    this.id = id;
    this.#stats = stats;
  }

  transportFor(base: { address: string; port: number }): PacketTransport | undefined {
    return this.transports.find((t) => t.port === base.port && t.address === base.address);
  }

  findRemote(address: string, port: number): Candidate | undefined {
    return this.remoteCandidates.find((c) => c.port === port && c.address === address);
  }

  findLocal(address: string, port: number): Candidate | undefined {
    return this.localCandidates.find((c) => c.port === port && c.address === address);
  }

  authorize(address: string, port: number): void {
    this.authorized.add(`${address}|${port}`);
  }

  /**
   * Application data (anything RFC 7983 does not call STUN). The hot path: one
   * comparison with the last accepted source, else one set lookup.
   */
  deliver(msg: Buffer, rinfo: RemoteAddress): void {
    if (rinfo.port !== this.#lastSrcPort || rinfo.address !== this.#lastSrcAddress) {
      if (!this.authorized.has(`${rinfo.address}|${rinfo.port}`)) {
        this.#stats.dropped.unauthorizedSource++;
        return;
      }
      this.#lastSrcAddress = rinfo.address;
      this.#lastSrcPort = rinfo.port;
    }
    const cb = this.recv;
    if (!cb) {
      this.#stats.dropped.noReceiver++;
      return;
    }
    this.#stats.dataPacketsReceived++;
    cb(msg, rinfo);
  }

  /** Forgets who may send data (on ICE restart or when the component fails). */
  resetAuthorization(): void {
    this.authorized.clear();
    this.#lastSrcAddress = '';
    this.#lastSrcPort = -1;
  }

  /** Sends on the send pair; false when there is none yet. */
  send(buf: Buffer): boolean {
    const pair = this.sendPair;
    if (!pair) return false;
    const t = this.transportFor(pair.local.base ?? pair.local);
    if (!t) return false;
    t.send(buf, pair.remote.port, pair.remote.address);
    this.#stats.dataPacketsSent++;
    this.#stats.dataBytesSent += buf.length;
    return true;
  }
}
