import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    [['burst', '--concurrency', '0'], /--concurrency must be a decimal integer in 1\.\.1000000, got '0'/],
    [['explore', '--scenario', 'nope'], /unknown scenario 'nope'/],
    [['explore', '--variant', 'nope'], /unknown variant 'nope'/],
    [['explore', '--scenario', 'composed/nope'], /unknown scenario 'composed\/nope'/],
    [['explore', '--scenario', 'composed/handles', '--variant', 'fenceBeforeTransfer'], /variant 'fenceBeforeTransfer' is not explored in composed\/handles/],
    [['bench', 'nope'], /unknown benchmark 'nope'/],
    [['bench', 'burst', '--only', 'nope'], /unknown part 'nope'/],
    [['bench', 'native', '--backend', 'nope'], /unknown backend 'nope'/],
    [['simulate', '--seeds', '1..2', '--canary', 'nope'], /unknown canary variant 'nope'/],
    [['check-trace', 'no/such/file.jsonl'], /ENOENT/],
  ] as const)('bad input %j is one clear line and exit 2, never a stack trace', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('check-trace: exit 0 for a whole trace, 1 with each problem named by its line', { timeout: 60_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'xferstate-cli-'));
    try {
      const lines = [
        { kind: 'begin', process: 'gen', server: 'generation' },
        { seq: 0, t: 0, kind: 'spawn', server: 'generation', actor: 'r0.lease', input: { leaseId: 'r0' } },
        { seq: 1, t: 0, kind: 'transition', server: 'generation', actor: 'r0.lease', machine: 'blockLease', event: { type: 'xstate.init' }, from: null, to: 'free' },
        { seq: 2, t: 0, kind: 'transition', server: 'generation', actor: 'r0.lease', machine: 'blockLease', event: { type: 'ALLOCATE' }, from: 'free', to: 'allocated' },
        { seq: 3, t: 0, kind: 'transition', server: 'generation', actor: 'r0.lease', machine: 'blockLease', event: { type: 'RELEASE', proof: null }, from: 'allocated', to: 'free' },
        { kind: 'end', process: 'gen', server: 'generation', records: 4, ended: 'finished' },
      ].map((l) => JSON.stringify(l));
      const whole = join(dir, 'whole.jsonl');
      writeFileSync(whole, lines.join('\n') + '\n');
      const ok = run('check-trace', whole);
      expect(ok.status).toBe(0);
      expect(ok.stdout).toMatch(/conforms/);
      const cut = join(dir, 'cut.jsonl');
      writeFileSync(cut, lines.slice(0, 4).join('\n') + '\n');
      const bad = run('check-trace', cut);
      expect(bad.status).toBe(1);
      expect(bad.stdout).toMatch(/line 4: truncated: the records of gen \(from line 1\) have no end record/);
      expect(bad.stdout).toMatch(/0 forbidden transitions, 1 other problems/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
