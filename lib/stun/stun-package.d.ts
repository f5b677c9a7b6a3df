// Minimal typings for the parts of the `stun` package (2.x) this library uses.
declare module 'stun' {
  export interface StunAttribute {
    readonly type: number;
    readonly value: any;
  }
  export class StunMessage {
    readonly type: number;
    readonly transactionId: Buffer;
    getAttribute(type: number): StunAttribute | undefined;
    hasAttribute(type: number): boolean;
    readonly count: number;
  }
  export class StunRequest extends StunMessage {
    setType(type: number): void;
    setTransactionId(id: Buffer): boolean;
    addAttribute(type: number, ...values: any[]): StunAttribute;
    addUsername(username: string): StunAttribute;
    addPriority(priority: number): StunAttribute;
    addUseCandidate(): StunAttribute;
    addIceControlling(tiebreaker: Buffer): StunAttribute;
    addIceControlled(tiebreaker: Buffer): StunAttribute;
    addXorAddress(address: string, port: number): StunAttribute;
    addError(code: number, reason: string): StunAttribute;
    addSoftware(software: string): StunAttribute;
    addMessageIntegrity(key: string): StunAttribute;
    addFingerprint(): StunAttribute;
    toBuffer(): Buffer;
  }
  export class StunResponse extends StunMessage {
    getXorAddress(): { address: string; port: number; family: string } | undefined;
    getUsername(): string | undefined;
    getError(): { code: number; reason: string } | undefined;
  }
  export function createMessage(type: number, transaction?: Buffer): StunRequest;
  export function decode(buf: Buffer): StunResponse;
  export function encode(msg: StunMessage): Buffer;
  const _default: {
    createMessage: typeof createMessage;
    decode: typeof decode;
    encode: typeof encode;
  };
  export default _default;
}
