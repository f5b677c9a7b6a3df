/**
 * What a component sends and receives through: a host UDP socket, or a TURN
 * allocation (the base of a relayed candidate, RFC 8445 §5.1.1.2). Checks,
 * consent and data use either the same way.
 */
export interface RemoteAddress {
  address: string;
  port: number;
  family: string;
  size: number;
}

export type PacketHandler = (msg: Buffer, rinfo: RemoteAddress) => void;

/** A test hook: return false to drop an outgoing datagram (simulates loss). */
export type SendFilter = (buf: Buffer, port: number, address: string) => boolean;

export interface PacketTransport {
  readonly kind: 'udp' | 'relay';
  /** The transport address packets leave from: the host address, or the relayed address. */
  readonly address: string;
  readonly port: number;
  filter: SendFilter | undefined;
  onPacket(handler: PacketHandler): void;
  send(buf: Buffer, port: number, address: string): void;
  close(): Promise<void>;
}
