/**
 * Writes the Performance section of README.md from a `npm run bench -- --json FILE`
 * result, between the `perf:start` and `perf:end` markers, so that the figures
 * in the README are never typed by hand.
 *   node dist/bench/readme.js bench/results.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Figure } from './stats.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node dist/bench/readme.js RESULTS.json\n');
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const f = (x: Figure | undefined, d = 1) => (x ? `${x.median.toFixed(d)} (${x.min.toFixed(d)}–${x.max.toFixed(d)})` : 'n/a');
const out: string[] = [];
const m = r.machine;
out.push(`Measured on ${m.date}: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.kernel}${m.quick ? ' (quick run)' : ''}. Medians with (min–max) over repeated runs; ratios are of medians measured side by side in the same run. Regenerate with \`npm run bench -- --json bench/results.json && node dist/bench/readme.js bench/results.json\`.`);
if (r.connectInProcess) {
  out.push('', '**Time to ready**, two agents in one process on loopback, from the start of gathering to both components ready (ms):', '');
  out.push('| nomination | trickle | ms |', '| --- | --- | --- |');
  for (const x of r.connectInProcess) out.push(`| ${x.mode} | ${x.trickle ? 'on' : 'off'} | ${f(x.ms)} |`);
}
if (r.connectPeers) {
  out.push('', '**Time to connected**, two CLI peers in separate processes (the `connected.ms` each reports, slower side), against libnice 0.1.21 peers (`spec/interop/libnice-peer.py`) in the same run (ms):', '');
  out.push('| nomination | trickle | ice-agent | libnice | ratio |', '| --- | --- | --- | --- | --- |');
  for (const x of r.connectPeers) out.push(`| ${x.nomination} | ${x.trickle ? 'on' : 'off'} | ${f(x.iceAgent)} | ${f(x.libnice)} | ${x.ratio?.toFixed(2) ?? 'n/a'} |`);
}
if (r.dataPath) {
  out.push('', '**Data path**: echo with 32 datagrams in flight through `send`/`attachRecv` on a ready component, against the same echo over two plain `dgram` sockets:', '');
  out.push('| size | ice-agent dgram/s | ice-agent Mbps | dgram dgram/s | ratio |', '| --- | --- | --- | --- | --- |');
  for (const x of r.dataPath) out.push(`| ${x.size} B | ${f(x.ice.dgramsPerSec, 0)} | ${f(x.ice.mbps)} | ${f(x.raw.dgramsPerSec, 0)} | ${x.ratio.toFixed(2)} |`);
}
if (r.stun) {
  out.push('', '**STUN cost** of one connectivity check (USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT):', '');
  out.push(`- build: ${f(r.stun.buildUs)} µs; from the pair's \`BindingRequestTemplate\`: ${f(r.stun.templateBuildUs)} µs; through the \`stun\` package, the previous encoder, measured alongside: ${f(r.stun.stunPackageBuildUs)} µs`);
  out.push(`- verify (decode, fingerprint, integrity): ${f(r.stun.verifyUs)} µs; through \`stun.decode\` and \`createHmac\`: ${f(r.stun.stunPackageVerifyUs)} µs`);
  out.push(`- checks answered by one agent: ${f(r.stun.answeredPerSec, 0)} per second`);
}
if (r.scale) {
  out.push('', '**Scale**: connected agent pairs in one process (consent freshness running while idle):', '');
  out.push('| pairs | connect all (s) | heap KiB/agent | RSS KiB/agent | fds/agent | idle CPU (% of a core) |', '| --- | --- | --- | --- | --- | --- |');
  for (const x of r.scale) out.push(`| ${x.pairs} | ${(x.connectAllMs / 1000).toFixed(1)} | ${x.heapPerAgentKiB.toFixed(1)} | ${x.rssPerAgentKiB.toFixed(1)} | ${x.fdsPerAgent.toFixed(2)} | ${x.idleCpuPercentOfCore.toFixed(1)}${x.error ? ` (stopped: ${x.error})` : ''} |`);
}
if (r.media) {
  const x = r.media;
  const i = x.idle;
  const fl = x.flood;
  out.push('', `**Media server**: one process holding ICE-lite sessions on one UDP port (a \`UdpMux\` on 127.0.0.1), each with a full-ICE client agent (its own socket, consent every 5 s × 0.8–1.2) in ${x.clientProcesses} other processes; idle CPU against a plain \`dgram\` echo server answering the same packet rate in the same window (\`bench/media.ts\`):`, '');
  out.push('| sessions | connected | connect all (s) | heap KiB/session | RSS KiB/session | server fds | idle CPU (% of a core) | echo (% of a core) | ratio |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  out.push(`| ${x.sessions} | ${x.connected} | ${(x.connectAllMs / 1000).toFixed(1)} | ${x.heapPerSessionKiB.toFixed(1)} | ${x.rssPerSessionKiB.toFixed(1)} | ${x.serverFds} | ${i.serverCpuPercentOfCore.toFixed(1)} | ${i.echoCpuPercentOfCore.toFixed(1)} | ${i.ratio.toFixed(2)} |`);
  out.push('', `Flood: ${fl.requests} Binding requests for random unknown ufrags from ${fl.ports} source ports in ${(fl.sendMs / 1000).toFixed(1)} s, with the sessions up: ${fl.countedByMux} reached the mux and were dropped there, ${fl.answered} answered; server RSS ${fl.rssBeforeMiB.toFixed(1)} → ${fl.rssAfterMiB.toFixed(1)} MiB, heap ${fl.heapBeforeMiB.toFixed(1)} → ${fl.heapAfterMiB.toFixed(1)} MiB, routes ${fl.routesBefore} → ${fl.routesAfter}; ${fl.serverReadyAfter} sessions ready and ${fl.serverFailedAfter} failed one consent interval later.`);
}
// The reading of the figures: the numbers in it come from the JSON too.
out.push('', 'Reading the figures:');
out.push('- Regular nomination waits one Ta (`stunPacingTimer`, 20 ms by default) between the first check and the nomination check, as RFC 8445 §14.2 paces new transactions; aggressive nomination needs no second check. For the CLI peers, `connected.ms` counts from the arrival of the remote credentials; with trickle those come before the candidates, so the trickle figures include the signalling of the candidates.');
out.push('- The data path is one byte test, one source comparison and a callback on receive, and one `socket.send` on send; the ratio to plain `dgram` is its whole overhead.');
if (r.scale?.length) {
  const big = r.scale[r.scale.length - 1];
  const checksPerSec = Math.round(big.agents / 5);
  const saturate = big.idleCpuPercentOfCore > 0 ? Math.round((big.pairs * 100) / big.idleCpuPercentOfCore / 100) * 100 : undefined;
  out.push(`- Memory is about ${big.heapPerAgentKiB.toFixed(0)} KiB of heap and ${big.fdsPerAgent.toFixed(0)} file descriptor per connected agent (one UDP socket per component). Idle CPU grows linearly with the agents: it is consent freshness, one Binding request per selected pair every 5 s (0.8–1.2×) and its answer. At ${big.pairs} pairs that is about ${checksPerSec} checks and as many answers a second, ${big.idleCpuPercentOfCore.toFixed(0)}% of a core${saturate ? `; by extrapolation consent alone saturates one core near ${saturate} pairs` : ''}.`);
}
if (r.stun) {
  const x = (v: number | undefined) => (v === undefined ? 'n/a' : `${v.toFixed(1)}×`);
  out.push(`- Building a check takes ${r.stun.buildUs.median.toFixed(1)} µs (${r.stun.templateBuildUs?.median.toFixed(1) ?? 'n/a'} µs from the pair's template) and verifying one ${r.stun.verifyUs.median.toFixed(1)} µs, ${x(r.stun.speedup?.build)} and ${x(r.stun.speedup?.verify)} faster than through the \`stun\` package: Binding messages are written and read on the bytes, and MESSAGE-INTEGRITY is HMAC-SHA1 in JavaScript (${x(r.stun.speedup?.integrity)} faster than a \`createHmac\` call; a template hashes the key's pad blocks once).`);
}

const readmePath = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const start = readme.indexOf('<!-- perf:start -->');
const end = readme.indexOf('<!-- perf:end -->');
if (start < 0 || end < start) {
  process.stderr.write('README.md has no perf:start/perf:end markers\n');
  process.exit(1);
}
writeFileSync(readmePath, `${readme.slice(0, start)}<!-- perf:start -->\n${out.join('\n')}\n${readme.slice(end)}`);
process.stdout.write('README.md Performance section updated\n');
