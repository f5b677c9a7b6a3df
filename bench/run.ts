/**
 * `npm run bench`: connect time, data-path overhead, cost per session at
 * scale, and STUN cost, each a median over repeats with min and max, each
 * comparison a ratio measured in the same run. Prints a table; `--json FILE`
 * writes the same figures; `--quick` runs fewer repeats and smaller scales.
 * Nothing here asserts wall time: it reports.
 */
import os from 'node:os';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchConnectInProcess } from './connect.js';
import { benchPeers } from './peers.js';
import { benchDataPath } from './datapath.js';
import { benchScale, type ScaleResult } from './scale.js';
import { benchStun } from './stun.js';
import { benchMedia, type MediaResult } from './media.js';
import { benchDtls, type DtlsBenchResult } from './dtls.js';
import { fmt, type Figure } from './stats.js';
import { benchTcp, type TcpResult } from './tcp.js';
import { benchFlood, type FloodResult } from './flood.js';
import { benchHolePunch, type HolePunchResult } from './holepunch.js';
import { benchRestore, type RestoreRoleResult } from './restore.js';
import { benchBrowser, type BrowserBenchResult } from './browser.js';

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const quick = values.quick!;
const only = values.only ? new Set(values.only.split(',')) : undefined;
const want = (s: string) => !only || only.has(s);
const log = (s: string) => process.stderr.write(`${s}\n`);

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  kernel: `${os.type()} ${os.release()}`,
  date: new Date().toISOString().slice(0, 10),
  quick,
};

const result: Record<string, unknown> = { machine };

if (want('connect')) {
  log('connect: in-process ...');
  result.connectInProcess = await benchConnectInProcess(quick ? 5 : 20);
}
// `--only peers` runs the CLI peers alone (`connect` runs both).
if (want('connect') || want('peers')) {
  log('connect: CLI peers, ice-agent vs libnice vs pion ...');
  result.connectPeers = await benchPeers(quick ? 3 : 7);
}
if (want('datapath')) {
  log('data path ...');
  result.dataPath = await benchDataPath(quick ? 3 : 5, quick ? 5000 : 20000);
}
if (want('stun')) {
  log('stun cost ...');
  result.stun = await benchStun(quick ? 3 : 5);
}
if (want('scale')) {
  const sizes = quick ? [100, 1000] : [100, 1000, 5000];
  const scale: ScaleResult[] = [];
  for (const n of sizes) {
    log(`scale: ${n} pairs ...`);
    scale.push(await benchScale(n, quick ? 3 : 10));
  }
  result.scale = scale;
}
if (want('media')) {
  const n = quick ? 1000 : 10_000;
  log(`media server: ${n} ICE-lite sessions on one UDP port ...`);
  result.media = await benchMedia({
    sessions: n, clientProcesses: quick ? 2 : 4, concurrency: 64, idleSeconds: quick ? 5 : 20,
    // 5,000 a second: what one server process keeps up with beside its sessions on a busy 2-core machine.
    flood: quick ? { requests: 20_000, ports: 500, rate: 5000 } : { requests: 100_000, ports: 2000, rate: 5000 }, log,
  });
}

if (want('tcp')) {
  log('ICE-TCP: connect and echo, against a plain framed TCP pair ...');
  result.tcp = await benchTcp(quick ? 3 : 5, quick ? 5000 : 20000);
}
if (want('dtls')) {
  log('dtls: node-dtls-client <-> gnutls-serv, over an ICE pair and directly ...');
  result.dtls = await benchDtls(quick ? 3 : 7, quick ? 200 : 500, quick ? 2000 : 5000);
}
if (want('flood')) {
  // Two phases of 100,000 even when quick: the figure is per 100,000, and the second phase shows whether growth goes on.
  log('flood: a connected session under a hostile flood, against a quiet run of the same length ...');
  result.flood = await benchFlood(quick ? 1 : 3, { hostile: 100_000, phases: 2, ports: 2000, rate: 5000, echoRate: 200, log });
}
if (want('holepunch')) {
  log('holepunch: EIM/EIM NAT rig, ice-agent vs libnice, no loss ...');
  const clean = await benchHolePunch(quick ? 3 : 5, 0);
  log('holepunch: EIM/EIM NAT rig, 20% loss in each NAT ...');
  result.holepunch = [clean, await benchHolePunch(quick ? 3 : 10, 0.2)];
}
if (want('restore')) {
  log('restore: CLI peers killed (SIGKILL) and restored with --restore, against fresh pairs ...');
  result.restore = await benchRestore(quick ? 3 : 7, log);
}
if (want('browser')) {
  log('browser: headless Chromium <-> ice-agent, against Chromium <-> Chromium, in a loopback-only namespace ...');
  result.browser = await benchBrowser(quick ? 3 : 7, log);
}

// ------------------------------------------------------------------- report
const lines: string[] = [];
lines.push(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.kernel}`);
const ci = result.connectInProcess as Awaited<ReturnType<typeof benchConnectInProcess>> | undefined;
if (ci) {
  lines.push('', 'time to ready, two agents in one process (gather start → both ready):');
  for (const r of ci) lines.push(`  ${r.mode.padEnd(10)} trickle=${String(r.trickle).padEnd(5)} ${fmt(r.ms)}`);
}
const cp = result.connectPeers as Awaited<ReturnType<typeof benchPeers>> | undefined;
if (cp) {
  lines.push('', 'time to connected, two CLI peers (connected.ms, slower side):');
  for (const r of cp) {
    lines.push(`  ${r.nomination.padEnd(10)} trickle=${String(r.trickle).padEnd(5)} ice-agent ${fmt(r.iceAgent)} | libnice ${fmt(r.libnice)} | ratio ${r.ratio?.toFixed(2) ?? 'n/a'}${r.libniceError ? ` (${r.libniceError})` : ''}` +
      ` | pion ${fmt(r.pion)} | ratio ${r.pionRatio?.toFixed(2) ?? 'n/a'}${r.pionError ? ` (${r.pionError})` : ''}`);
  }
}
const dp = result.dataPath as Awaited<ReturnType<typeof benchDataPath>> | undefined;
if (dp) {
  lines.push('', 'data path, echo with window 32 (ice-agent vs two plain dgram sockets):');
  for (const r of dp) {
    lines.push(`  ${String(r.size).padStart(4)} B: ice-agent ${fmt(r.ice.dgramsPerSec, 0)}, ${fmt(r.ice.mbps, 1)} | dgram ${fmt(r.raw.dgramsPerSec, 0)} | ratio ${r.ratio.toFixed(2)}`);
  }
}
const st = result.stun as Awaited<ReturnType<typeof benchStun>> | undefined;
if (st) {
  const x = (r: number | undefined, ours: string) => (r === undefined ? '' : `, ${r.toFixed(1)}× ${ours}`);
  const rows: [string, string][] = [
    ['build a check, encodeBindingRequest', fmt(st.buildUs)],
    ['build a check, BindingRequestTemplate', fmt(st.templateBuildUs)],
    ['build a check, stun package (reference)', `${fmt(st.stunPackageBuildUs)}${x(st.speedup.build, 'encodeBindingRequest')}${x(st.speedup.template, 'the template')}`],
    ['verify a check', fmt(st.verifyUs)],
    ['verify, stun.decode + createHmac (reference)', `${fmt(st.stunPackageVerifyUs)}${x(st.speedup.verify, 'ours')}`],
    ['MESSAGE-INTEGRITY alone', fmt(st.integrityUs)],
    ['MESSAGE-INTEGRITY, createHmac (reference)', `${fmt(st.createHmacIntegrityUs)}${x(st.speedup.integrity, 'ours')}`],
    ['checks answered', fmt(st.answeredPerSec, 0)],
  ];
  lines.push('', 'STUN cost (each reference measured in the same repeats):');
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(45)} ${value}`);
}
const sc = result.scale as ScaleResult[] | undefined;
if (sc) {
  lines.push('', 'scale (connected pairs in one process):');
  for (const r of sc) {
    lines.push(`  ${String(r.pairs).padStart(5)} pairs: connect all ${(r.connectAllMs / 1000).toFixed(1)} s, heap ${r.heapPerAgentKiB.toFixed(1)} KiB/agent, RSS ${r.rssPerAgentKiB.toFixed(1)} KiB/agent, ${r.fdsPerAgent.toFixed(2)} fd/agent, idle CPU ${r.idleCpuPercentOfCore.toFixed(1)}% of a core${r.error ? ` (stopped: ${r.error})` : ''}`);
  }
}
const md = result.media as MediaResult | undefined;
if (md) {
  const i = md.idle;
  const f = md.flood;
  lines.push('', `media server (${md.sessions} ICE-lite sessions on one UDP port, full-ICE clients in ${md.clientProcesses} processes):`);
  lines.push(`  connected ${md.connected}/${md.sessions} in ${(md.connectAllMs / 1000).toFixed(1)} s (all answered after ${(md.answersMs / 1000).toFixed(1)} s; ${md.concurrency} connects at a time per client process)${md.error ? ` (${md.error})` : ''}`);
  lines.push(`  server heap ${md.heapPerSessionKiB.toFixed(2)} KiB/session, RSS ${md.rssPerSessionKiB.toFixed(2)} KiB/session, ${md.serverFds} fd for ${md.localAddresses} local address`);
  lines.push(`  idle: server ${i.serverCpuPercentOfCore.toFixed(1)}% of a core at ${i.serverPacketsPerSec.toFixed(0)} pkt/s, dgram echo ${i.echoCpuPercentOfCore.toFixed(1)}% at ${i.echoPacketsPerSec.toFixed(0)} pkt/s, ratio ${i.ratio.toFixed(2)} (clients ${i.clientsCpuPercentOfCore.toFixed(0)}% of a core; machine ${i.machineBusyPercent.toFixed(0)}% busy)`);
  lines.push(`  flood: ${f.requests} requests from ${f.ports} ports in ${(f.sendMs / 1000).toFixed(1)} s, ${f.countedByMux} counted by the mux, ${f.answered} answered; RSS ${f.rssBeforeMiB.toFixed(1)} → ${f.rssAfterMiB.toFixed(1)} MiB, heap ${f.heapBeforeMiB.toFixed(1)} → ${f.heapAfterMiB.toFixed(1)} MiB, routes ${f.routesBefore} → ${f.routesAfter}; sessions ready: ${f.serverReadyRightAfter} at its end, ${f.serverReadyAfter} server / ${f.clientsReadyAfter} client one consent interval later (${f.serverFailedAfter} / ${f.clientsFailedAfter} failed)`);
  if (md.hotPathUs !== undefined) {
    const perPacket = (pct: number, pps: number) => (pct / 100 / pps) * 1e6;
    const us = (ms: number, pps: number) => (ms * 1000) / (pps * i.seconds);
    lines.push(`  per packet: server ${perPacket(i.serverCpuPercentOfCore, i.serverPacketsPerSec).toFixed(1)} µs (main thread ${us(i.serverMainThreadMs, i.serverPacketsPerSec).toFixed(1)}, of it system ${us(i.serverSystemMs, i.serverPacketsPerSec).toFixed(1)}), echo ${perPacket(i.echoCpuPercentOfCore, i.echoPacketsPerSec).toFixed(1)} µs (main thread ${us(i.echoMainThreadMs, i.echoPacketsPerSec).toFixed(1)}, system ${us(i.echoSystemMs, i.echoPacketsPerSec).toFixed(1)}); the request's JavaScript alone (socket stubbed, ${md.sessions} sessions in random order) ${md.hotPathUs.toFixed(1)} µs, allocating ${md.hotPathBytes.toFixed(0)} bytes`);
  }
  lines.push(`  datagrams the kernel dropped at the server socket's full buffer: connect ${md.kernelDrops.connect}, idle ${md.kernelDrops.idle}, flood ${md.kernelDrops.flood} (echo server, idle: ${md.kernelDrops.echoIdle})`);
}
const tcp = result.tcp as TcpResult | undefined;
if (tcp) {
  lines.push('', 'ICE-TCP on loopback (RFC 6544, TCP only; references measured in the same run):');
  for (const r of tcp.connect) lines.push(`  time to ready, ${r.mode.padEnd(10)} ICE-TCP ${fmt(r.iceTcpMs)} | ICE-UDP ${fmt(r.iceUdpMs)} | plain TCP connect ${fmt(r.plainTcpConnectMs)}`);
  for (const r of tcp.echo) lines.push(`  echo ${String(r.size).padStart(4)} B: ice-agent ${fmt(r.ice.dgramsPerSec, 0)}, ${fmt(r.ice.mbps, 1)} | plain TCP + RFC 4571 ${fmt(r.raw.dgramsPerSec, 0)} | ratio ${r.ratio.toFixed(2)}`);
}
const dt = result.dtls as DtlsBenchResult | { error: string } | undefined;
if (dt && 'error' in dt && !('ice' in dt)) lines.push('', `dtls: skipped (${dt.error})`);
else if (dt && 'ice' in dt) {
  lines.push('', `DTLS (node-dtls-client <-> gnutls-serv PSK echo; over an ICE pair vs directly on loopback, same run):`);
  for (const [name, x] of [['direct', dt.direct], ['over ICE', dt.ice], ['over ICE, loopback shim', dt.iceLoopbackShim]] as const) {
    lines.push(`  ${name.padEnd(24)} handshake ${fmt(x.handshakeMs, 1)} | rtt ${fmt(x.rttUs, 0)} | ${fmt(x.recordsPerSec, 0)}, ${fmt(x.mbps, 1)}`);
  }
  lines.push(`  ratio ICE/direct: throughput ${dt.ratio.throughput.toFixed(2)}, rtt ${dt.ratio.rtt.toFixed(2)} (+${dt.addedLatencyUs.toFixed(0)} µs), handshake ${dt.ratio.handshake.toFixed(2)}`);
  lines.push(`  loopback shim vs in-memory: throughput ${dt.loopbackShim.throughputRatio.toFixed(2)}, rtt +${dt.loopbackShim.addedLatencyUs.toFixed(0)} µs`);
}
const fl = result.flood as FloodResult | undefined;
if (fl) {
  const mib = (x: Figure | undefined) => (x && !Number.isNaN(x.median) ? `${x.median >= 0 ? '+' : ''}${x.median.toFixed(2)} MiB (${x.min.toFixed(2)}–${x.max.toFixed(2)}, n=${x.n})` : 'n/a');
  lines.push('', `hostile flood on a connected session (loopback UDP, the target alone in its process; ${fl.phases} × ${fl.hostile} datagrams from ${fl.ports} ports at ${fl.rate}/s, echo ${fl.echoRate}/s; quiet: the same session and windows, no flood; growth after GC):`);
  for (let i = 0; i < fl.phases; i++) {
    lines.push(`  ${i === 0 ? 'first' : 'next '} ${fl.hostile}: flood RSS ${mib(fl.flood.rssMiB[i])} (V8's young generation ${mib(fl.flood.newSpaceMiB?.[i])} of it), heap ${mib(fl.flood.heapMiB[i])} | quiet RSS ${mib(fl.quiet.rssMiB[i])} (young generation ${mib(fl.quiet.newSpaceMiB?.[i])}), heap ${mib(fl.quiet.heapMiB[i])}`);
  }
  if (fl.sink) lines.push(`  the same flood into a plain dgram socket that drops it: RSS ${fl.sink.rssMiB.map((x, i) => `${i === 0 ? 'first' : 'next'} ${mib(x)} (young generation ${mib(fl.sink!.newSpaceMiB[i])})`).join(', ')}`);
  lines.push(`  echo ratio: flood ${fmt(fl.flood.echoRatio, 4)} | quiet ${fmt(fl.quiet.echoRatio, 4)}; rtt p99 flood ${fmt(fl.flood.rttP99Ms, 1)} | quiet ${fmt(fl.quiet.rttP99Ms, 1)}; target CPU flood ${fmt(fl.flood.cpuPercentOfCore, 1)} | quiet ${fmt(fl.quiet.cpuPercentOfCore, 1)} of a core`);
  const last = fl.runs.filter((r) => r.flood).at(-1);
  if (last) {
    const c = last.counted;
    const dropped = Object.entries(c.deltas).filter(([k]) => k.startsWith('dropped.')).map(([k, v]) => `${k.slice(8)} ${v}`).join(', ');
    lines.push(`  counted (last flood run): ${last.hostile} sent = ${c.hostileCounted} seen by the agent + ${last.kernelDrops} dropped by the kernel at the full socket buffer; packetsReceived ${c.packetsReceived}, per-datagram counters sum ${c.primarySum}; dropped: ${dropped}`);
    lines.push(`  after it: ${last.remoteCandidates} remote candidates, ${last.pairs} pairs, ${last.deliveredFromOthers} datagrams from checked flood ports delivered, ${last.toFlooder} datagrams sent to the flood ports, state ${last.stateAfter}, selected pair ${last.selectedPairKept ? 'kept' : 'CHANGED'}; GCs ${last.gc.minor} minor, ${last.gc.major} major`);
  }
  if (fl.error) lines.push(`  (error: ${fl.error})`);
}
const hp = result.holepunch as HolePunchResult[] | undefined;
if (hp) {
  lines.push('', 'hole punching, EIM/EIM NAT rig (CLI peers, coturn on the public side; loss: iptables statistic drops in each NAT\'s FORWARD chain, so 1−(1−loss)² per direction end to end):');
  for (const h of hp) {
    if (h.skipped) {
      lines.push(`  loss ${(h.loss * 100).toFixed(0)}%: skipped (${h.skipped})`);
      continue;
    }
    const pairs = (x: Record<string, number>) => Object.entries(x).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    lines.push(`  loss ${String((h.loss * 100).toFixed(0)).padStart(2)}%: ice-agent ${fmt(h.iceAgent, 0)} [${pairs(h.pairs['ice-agent'])}] | libnice ${fmt(h.libnice, 0)} [${pairs(h.pairs.libnice)}] | ratio ${h.ratio?.toFixed(2) ?? 'n/a'}${h.error ? ` (last error: ${h.error.slice(0, 200)})` : ''}`);
  }
}
const rs = result.restore as RestoreRoleResult[] | undefined;
if (rs) {
  lines.push('', 'session restore, CLI peers on loopback (SIGKILL in the data phase, then --restore; ms from the new process\'s spawn; fresh: two new peers spawned together):');
  for (const r of rs) {
    const data = r.role === 'controlling'
      ? `restored ${fmt(r.restored, 0)}, first echo ${fmt(r.firstEcho, 0)} | fresh: connected ${fmt(r.freshConnected, 0)}, first echo ${fmt(r.freshFirstEcho, 0)}`
      : `restored (first datagram from the peer) ${fmt(r.restored, 0)} | fresh: connected ${fmt(r.freshConnected, 0)}`;
    lines.push(`  ${r.role.padEnd(11)} ${data} | ratio ${r.ratio.toFixed(2)}; answering a probe ${fmt(r.answering, 0)}; outage ${fmt(r.outage, 0)}${r.error ? ` (error: ${r.error.slice(0, 200)})` : ''}`);
  }
  for (const r of rs) lines.push(`  start-up references (${r.role} repeats): node ${fmt(r.nodeStartup, 0)}, node importing ice-agent ${fmt(r.importStartup, 0)}`);
}
const br = result.browser as BrowserBenchResult | undefined;
if (br?.skipped) lines.push('', `browser: skipped (${br.skipped})`);
else if (br) {
  lines.push('', `browser (${br.chromium}; it offers a data channel after gathering; setRemoteDescription(answer) → ICE connected on the page's clock):`);
  lines.push(`  answered by ice-agent ${fmt(br.iceAgent?.browserMs, 1)} | by a second Chromium peer connection ${fmt(br.chromiumPair?.browserMs, 1)} | ratio ${br.ratio?.toFixed(2) ?? 'n/a'}`);
  lines.push(`  answering side: ice-agent offer → ready ${fmt(br.iceAgent?.agentReadyMs, 1)} | Chromium setRemoteDescription(offer) → connected ${fmt(br.chromiumPair?.answererMs, 1)}${br.errors.length ? ` (errors: ${br.errors.slice(0, 3).join('; ')})` : ''}`);
}
process.stdout.write(`${lines.join('\n')}\n`);
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
