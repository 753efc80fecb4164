import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('the embedding example in docs/embedding.md runs against the built package', () => {
  const example = fileURLToPath(new URL('../../docs/examples/minimal-executor.mjs', import.meta.url));
  const out = execFileSync(process.execPath, [example], { encoding: 'utf8', timeout: 60_000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { completed: number; cancelled: number; verified: number; leasesStillHeld: number };
  expect(r.completed + r.cancelled).toBe(24);
  expect(r.cancelled).toBeGreaterThan(0);
  expect(r.verified).toBe(r.completed);
  expect(r.leasesStillHeld).toBe(0);
}, 90_000);
