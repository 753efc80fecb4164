import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/xferstate.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('xferstate mutate (CLI input)', () => {
  it.each([
    [['mutate', '--machine', 'nope'], /unknown machine 'nope'; known: .*blockLease/],
    [['mutate', '--limit', '0'], /--limit must be a positive integer/],
    [['mutate', '--limit', 'ten'], /--limit must be a positive integer/],
    [['mutate', '--budget-ms', '-5'], /--budget-ms must be a non-negative integer/],
    [['mutate', '--workers', '1.5'], /--workers must be a non-negative integer/],
    [['mutate', '--walks', '-1'], /--walks must be a non-negative integer/],
    [['mutate', '--shipped-states', '100'], /--shipped-states must be an integer of at least 6000/],
  ] as const)('bad input %j is one clear line and exit 2', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  }, 60_000);
});
