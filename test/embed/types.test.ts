import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

/**
 * The typed embedding catches the mistakes a team makes while embedding the machines (issue 13): the
 * fixture is compiled with tsc, and the lines with a compile error must be exactly the lines marked
 * `// MISTAKE:` — so each mistake is an error and the correct uses beside them are not.
 */
it('every embedding mistake in the fixture is a compile error, and nothing else is', () => {
  const fixture = fileURLToPath(new URL('./mistakes.fixture.ts', import.meta.url));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', fileURLToPath(new URL('./tsconfig.fixture.json', import.meta.url)), '--pretty', 'false'], { encoding: 'utf8' });
  const errorLines = new Set<number>();
  for (const m of r.stdout.matchAll(/mistakes\.fixture\.ts\((\d+),\d+\): error TS\d+/g)) errorLines.add(Number(m[1]));
  const marked = readFileSync(fixture, 'utf8')
    .split('\n')
    .flatMap((line, i) => (line.includes('// MISTAKE:') && !line.trimStart().startsWith('//') ? [{ line: i + 1, what: line.slice(line.indexOf('// MISTAKE:') + 12) }] : []));
  expect(marked.length).toBeGreaterThanOrEqual(8);
  for (const m of marked) expect(errorLines.has(m.line), `not a compile error: ${m.what} (line ${m.line})\n${r.stdout}`).toBe(true);
  const unmarked = [...errorLines].filter((l) => !marked.some((m) => m.line === l));
  expect(unmarked, r.stdout).toEqual([]);
}, 180_000);
