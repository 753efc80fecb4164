import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/xferstate.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('xferstate CLI', () => {
  it('explore --json prints the documented shape and exits 0 when shipped is clean and variants are caught', () => {
    const r = run('explore', '--scenario', 'handleRelease', '--json');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { results: Array<{ scenario: string; variant: string; shipped: boolean; states: number; edges: number; ms: number; violations: Array<{ invariant: string; path: string[] }> }> };
    expect(out.results.length).toBeGreaterThan(3);
    for (const x of out.results) {
      expect(Object.keys(x)).toEqual(expect.arrayContaining(['scenario', 'variant', 'shipped', 'states', 'edges', 'ms', 'violations']));
      expect(x.shipped ? x.violations.length === 0 : x.violations.length > 0).toBe(true);
    }
    const caught = out.results.find((x) => x.variant === 'releaseIsQuiescence')!;
    expect(caught.violations.map((v) => v.invariant)).toContain('S6');
    expect(caught.violations[0]!.path.length).toBeGreaterThan(0);
  });

  it.each([
    [['burst', '--faults', 'bogus'], /unknown fault 'bogus'/],
    [['burst', '--concurrency', '0'], /--concurrency must be an integer/],
    [['explore', '--scenario', 'nope'], /unknown scenario 'nope'/],
    [['explore', '--variant', 'nope'], /unknown variant 'nope'/],
    [['bench', 'nope'], /unknown benchmark 'nope'/],
    [['check-trace', 'no/such/file.jsonl'], /ENOENT/],
  ] as const)('bad input %j is one clear line and exit 2, never a stack trace', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
