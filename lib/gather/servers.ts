/**
 * The STUN and TURN servers of one gathering (RFC 8445 §5.1.1.2), with their
 * names resolved (RFC 7064/7065 URLs; a name lookup is I/O, so the shell does
 * it and hands the core a plan). A lookup that fails or times out becomes an
 * entry with an error, which the core reports as a `server-error`.
 */
import { canonicalIp } from '../transport/address.js';
import type { ServerPlan, TurnServerPlan } from '../core/gathering.js';
import type { TurnServer } from '../options.js';
import { parseIceServerUrl } from '../turn/url.js';

/** A TURN server, for every component or (setRelayInfo) for one. */
export type TurnServerEntry = [server: TurnServer, componentId: number | undefined];

export async function planServers(
  stunUrls: readonly string[],
  turnServers: readonly TurnServerEntry[],
  lookup: (host: string) => Promise<string>,
): Promise<ServerPlan> {
  const resolve = async (host: string): Promise<{ address?: string; error?: string }> => {
    const ip = canonicalIp(host);
    if (ip !== undefined) return { address: ip };
    try {
      return { address: await lookup(host) };
    } catch (err) {
      return { error: `cannot resolve ${host}: ${(err as Error).message}` };
    }
  };
  const stun = await Promise.all(stunUrls.map(async (url) => {
    const u = parseIceServerUrl(url);
    return { url, port: u.port, ...(await resolve(u.host)) };
  }));
  const turn = await Promise.all(turnServers.map(async ([t, componentId]): Promise<TurnServerPlan> => {
    const u = parseIceServerUrl(t.url);
    return {
      url: t.url, port: u.port, transport: u.transport, secure: u.secure, username: t.username, credential: t.credential,
      ...(t.ca !== undefined ? { ca: t.ca } : {}),
      ...(t.rejectUnauthorized !== undefined ? { rejectUnauthorized: t.rejectUnauthorized } : {}),
      // SNI takes names only (RFC 6066 §3); an IP is checked against the certificate's IP SANs.
      ...(canonicalIp(u.host) === undefined ? { servername: u.host } : {}),
      ...(componentId !== undefined ? { componentId } : {}),
      ...(await resolve(u.host)),
    };
  }));
  return { stun, turn };
}
