#!/usr/bin/env node
/**
 * DTLS over ICE: one agent reaches a DTLS PSK echo service that sits behind
 * another agent, which forwards its component to the service; the first
 * runs a DTLS 1.2 client (agent.connectDtls) over the selected pair and
 * prints round-trip times.
 *
 *   node dist/examples/dtls.js                      # starts gnutls-serv itself (Debian: gnutls-bin)
 *   node dist/examples/dtls.js --service 127.0.0.1:5684 --identity alice --key 00112233445566778899aabbccddeeff
 *   node dist/examples/dtls.js --count 200
 *
 * Without --service it starts `gnutls-serv --udp --echo --pskpasswd FILE`
 * on a free port (gnutls-serv listens on every interface: it has no option
 * to choose one) and stops it at the end. With --service it uses yours,
 * e.g. `gnutls-serv --udp --echo --pskpasswd psk.txt -p 5684 --priority
 * NORMAL:+PSK` with `alice:00112233445566778899aabbccddeeff` in psk.txt, or
 * `openssl s_server -dtls1_2 -nocert -psk HEX -psk_identity alice -accept
 * 127.0.0.1:5684` (which does not echo: use --count 0).
 *
 * Both agents are in this process and signal to each other by function
 * call; in real life the forwarding agent runs next to the service (an IoT
 * gateway, a CoAP server behind a NAT) and the candidates travel over your
 * signalling channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Agent, DtlsError } from '../lib/index.js';

const { values } = parseArgs({
  options: {
    service: { type: 'string' },
    identity: { type: 'string', default: 'alice' },
    key: { type: 'string', default: '00112233445566778899aabbccddeeff' },
    count: { type: 'string', default: '20' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write('usage: dtls [--service HOST:PORT] [--identity ID] [--key HEX] [--count N]\n');
  process.exit(0);
}
const count = Number(values.count);
const key = Buffer.from(values.key!, 'hex');

/** Starts gnutls-serv as a DTLS PSK echo service on a free port. */
async function startGnutls(): Promise<{ port: number; stop: () => void }> {
  const bin = '/usr/bin/gnutls-serv';
  if (!existsSync(bin)) throw new Error(`${bin} is missing: apt-get install gnutls-bin, or pass --service HOST:PORT`);
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, () => r()));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  const dir = mkdtempSync(join(tmpdir(), 'dtls-example-'));
  writeFileSync(join(dir, 'psk.txt'), `${values.identity}:${values.key}\n`, { mode: 0o600 });
  const child: ChildProcess = spawn(bin, ['--udp', '--echo', '--nodb', '--pskpasswd', join(dir, 'psk.txt'), '--priority', 'NORMAL:+PSK', '-p', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const on = (d: Buffer) => {
      out += d.toString();
      if (/listening on IPv4/.test(out)) resolve();
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`gnutls-serv exited (${code}):\n${out}`)));
  });
  return {
    port,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  let service: { host: string; port: number };
  let stopService = () => {};
  if (values.service) {
    const i = values.service.lastIndexOf(':');
    service = { host: values.service.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(values.service.slice(i + 1)) };
  } else {
    const g = await startGnutls();
    service = { host: '127.0.0.1', port: g.port };
    stopService = g.stop;
    console.log(`gnutls-serv: DTLS PSK echo on UDP port ${g.port}`);
  }

  // The agent next to the service (controlled) and the one that wants to reach it (controlling).
  const gateway = new Agent({ localAddresses: ['127.0.0.1'] });
  const client = new Agent({ localAddresses: ['127.0.0.1'], controllingMode: true });
  const gs = gateway.addStream(1);
  const cs = client.addStream(1);
  await Promise.all([gateway.gatherCandidates(gs), client.gatherCandidates(cs)]);
  const gc = gateway.getLocalCredentials(gs);
  const cc = client.getLocalCredentials(cs);
  client.setRemoteCredentials(cs, gc.ufrag, gc.pwd);
  gateway.setRemoteCredentials(gs, cc.ufrag, cc.pwd);
  client.setRemoteCandidates(cs, 1, gateway.getLocalCandidates(gs, 1));
  gateway.setRemoteCandidates(gs, 1, client.getLocalCandidates(cs, 1));
  const [pair] = await client.connect(cs, { timeout: 10_000 });
  console.log(`ICE ready: ${pair!.local.address}:${pair!.local.port} <-> ${pair!.remote.address}:${pair!.remote.port}`);

  // The gateway forwards its component to the service: every datagram there, every answer back.
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => udp.connect(service.port, service.host, () => r()));
  udp.on('error', () => {});
  const component = gateway.createSocket(gs, 1);
  component.on('message', (data) => udp.send(data));
  udp.on('message', (data) => component.send(data));

  try {
    const t0 = performance.now();
    const dtls = await client.connectDtls(cs, 1, { psk: { [values.identity!]: key }, timeout: 5000 });
    console.log(`DTLS connected in ${(performance.now() - t0).toFixed(1)} ms (${dtls.cipherSuite}, handshake ${dtls.handshakeMs!.toFixed(1)} ms)`);
    const rtts: number[] = [];
    for (let i = 0; i < count; i++) {
      const msg = Buffer.from(`ping ${i}`);
      const sent = performance.now();
      const echo = await new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 1000);
        dtls.once('message', (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        dtls.send(msg);
      });
      if (!echo) {
        console.log(`ping ${i}: no echo within 1 s`);
        continue;
      }
      rtts.push(performance.now() - sent);
      console.log(`${echo.toString()}: ${(rtts.at(-1)! * 1000).toFixed(0)} µs`);
    }
    if (rtts.length) {
      rtts.sort((a, b) => a - b);
      console.log(`round trips over DTLS over ICE: ${rtts.length}/${count}, median ${(rtts[rtts.length >> 1]! * 1000).toFixed(0)} µs, ` +
        `min ${(rtts[0]! * 1000).toFixed(0)} µs, max ${(rtts.at(-1)! * 1000).toFixed(0)} µs`);
    }
    await dtls.close();
    // Let the close_notify through the gateway before it goes.
    await new Promise((r) => setTimeout(r, 50));
  } catch (err) {
    console.error(err instanceof DtlsError ? `DTLS failed (${err.reason}): ${err.message}` : err);
    process.exitCode = 1;
  } finally {
    component.close();
    udp.close();
    await Promise.all([client.close(), gateway.close()]);
    stopService();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
