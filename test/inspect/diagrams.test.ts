import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderDiagrams } from '../../src/inspect/diagrams.js';

const DIR = join(import.meta.dirname, '../../docs/diagrams');

describe('docs/diagrams', () => {
  it('match the machines (run `xferstate diagram` after changing a machine)', async () => {
    const fresh = await renderDiagrams();
    expect(fresh.map((d) => d.file)).toEqual(['transferHandle.svg', 'contextSend.svg', 'generationReceive.svg', 'requestLifecycle.svg', 'blockLease.svg']);
    for (const d of fresh) {
      const committed = readFileSync(join(DIR, d.file), 'utf8');
      expect(committed === d.svg, `docs/diagrams/${d.file} is stale: run \`node bin/xferstate.js diagram\``).toBe(true);
    }
    const extra = readdirSync(DIR).filter((f) => f.endsWith('.svg') && !fresh.some((d) => d.file === f));
    expect(extra, 'SVGs of machines that no longer exist').toEqual([]);
  });
});
