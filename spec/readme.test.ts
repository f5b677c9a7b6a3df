/** The README's API example runs as written, against the built package, imported by its name. */
import t from 'tap';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));

t.test('README "Use it" example', async (t) => {
  t.ok(existsSync(path.join(root, 'dist/lib/index.js')), 'the package is built (npm install runs the prepare script)');
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  t.ok(m, 'the section has a js code block');
  const code = m![1]!;
  t.match(code, /from 'ice-agent'/, 'it imports the package by name');
  t.ok(code.trim().split('\n').length <= 20, 'it is short');
  // Inside the package directory, so that 'ice-agent' resolves to this package (self-reference).
  const dir = path.join(root, 'dist', 'readme-check');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'example.mjs');
  writeFileSync(file, code);
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20000 });
  t.equal(out.trim(), 'hello', 'prints what the comment says');
});
