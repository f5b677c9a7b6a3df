#!/usr/bin/env node
/**
 * Joins an unchanged CLI peer (ice-agent-peer, full ICE, controlling) to the
 * SFU of examples/sfu.ts: spawns the peer, posts its `description` line to
 * the SFU's POST /join, writes the SFU agent's `description` back to the
 * peer's stdin, and leaves (DELETE /sessions/ID) when the peer exits.
 *
 *   node dist/examples/sfu-join.js --sfu http://127.0.0.1:PORT [--host 127.0.0.1] [--peer PATH] [-- PEER-ARGS...]
 *
 * PEER-ARGS go to the peer after `--role controlling --host HOST` (e.g.
 * `-- --count 200 --verbose`). With `--trickle` the bridge collects the
 * credentials and candidates into one description before posting it.
 *
 * To whoever runs it, the bridge looks like the peer: the peer's stdout lines
 * appear unchanged on the bridge's stdout, its stderr on the bridge's stderr,
 * the end of the bridge's stdin ends the peer's, and the bridge exits with
 * the peer's exit code. If the SFU refuses or cannot be reached, the bridge
 * writes an `error` line, ends the peer's stdin and exits 1.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

type Message = Record<string, unknown> & { type: string };

function log(line: string): void {
  process.stderr.write(`sfu-join: ${line}\n`);
}

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        sfu: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        peer: { type: 'string', default: fileURLToPath(new URL('./peer.js', import.meta.url)) },
      },
    });
  } catch (err) {
    log((err as Error).message);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (!values.sfu || !/^https?:\/\//.test(values.sfu)) {
    log('usage: sfu-join --sfu http://HOST:PORT [--host ADDR] [--peer PATH] [-- PEER-ARGS...]');
    process.exit(2);
  }
  const base = values.sfu.replace(/\/+$/, '');
  const peer = spawn(process.execPath, [values.peer!, '--role', 'controlling', '--host', values.host!, ...positionals], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // Writing to a peer that already exited must not take the bridge down.
  peer.stdin.on('error', () => {});
  process.stdout.on('error', () => peer.kill('SIGTERM'));

  let session: string | undefined;
  let joining = false;
  let failed = false;
  const trickled: { ufrag?: string; pwd?: string; candidates: string[] } = { candidates: [] };

  const fail = (message: string): void => {
    log(message);
    failed = true;
    process.stdout.write(`${JSON.stringify({ type: 'error', message })}\n`);
    peer.stdin.end();
  };

  const join = async (description: Message): Promise<void> => {
    if (joining) return;
    joining = true;
    let res: Response;
    try {
      res = await fetch(`${base}/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(description) });
    } catch (err) {
      fail(`cannot reach the SFU at ${base}: ${(err as Error).message}`);
      return;
    }
    const body = (await res.text()).trim();
    if (res.status !== 201) {
      fail(`the SFU refused the description: ${res.status} ${body}`);
      return;
    }
    session = res.headers.get('location') ?? undefined;
    log(`joined: ${session ?? '(no session id)'}`);
    // The SFU's answer is a description line: the peer reads it as its remote side's.
    peer.stdin.write(`${body}\n`);
  };

  createInterface({ input: peer.stdout, crlfDelay: Infinity }).on('line', (line) => {
    process.stdout.write(`${line}\n`);
    let m: Message;
    try {
      m = JSON.parse(line) as Message;
    } catch {
      return;
    }
    switch (m?.type) {
      case 'description':
        void join(m);
        break;
      case 'credentials':
        trickled.ufrag = m.ufrag as string;
        trickled.pwd = m.pwd as string;
        break;
      case 'candidate':
        trickled.candidates.push(m.candidate as string);
        break;
      case 'end-of-candidates':
        void join({ type: 'description', ufrag: trickled.ufrag, pwd: trickled.pwd, candidates: trickled.candidates });
        break;
      case 'error':
        peer.stdin.end();
        break;
    }
  });

  // The end of our stdin is the end of the peer's: it then exits once its work is done.
  process.stdin.on('end', () => peer.stdin.end());
  process.stdin.resume();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => peer.kill(sig));

  peer.on('error', (err) => fail(`cannot run the peer ${values.peer}: ${err.message}`));
  peer.on('close', async (code, signal) => {
    if (session) {
      // Leave at once rather than have the SFU wait for consent to run out (RFC 7675, 30 s).
      await fetch(`${base}${session}`, { method: 'DELETE' }).catch((err: Error) => log(`leaving: ${err.message}`));
    }
    process.exit(failed ? 1 : code ?? (signal ? 1 : 0));
  });
}

main();
