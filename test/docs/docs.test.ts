import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import { SCENARIOS, VARIANT_PLAN } from '../../src/explore/catalog.js';
import { SAFETY } from '../../src/explore/invariants.js';
import { INVARIANT_DOCS, INVARIANT_ORDER, PRODUCTION_MACHINES } from '../../src/docs/catalog.js';
import { regenerateDocs } from '../../src/docs/index.js';
import { repoRoot } from '../../src/docs/source.js';

/**
 * The generated sections of docs/machines.md and docs/invariants.md are what the generator produces
 * from the current machines, catalog and explorer (run `xferstate docs`, or
 * `node dist/src/docs/main.js`, to refresh them), and the hand-written parts name everything the code has.
 */
const root = repoRoot();
const read = (f: string) => readFileSync(join(root, f), 'utf8');

describe('generated docs', () => {
  it('docs/machines.md and docs/invariants.md match the generator (run `xferstate docs` after changing machines or the catalog)', async () => {
    const results = await regenerateDocs({ write: false, root });
    for (const r of results) expect(r.current, `${r.file} is out of date`).toBe(r.expected);
  }, 120_000);
});

describe('docs/invariants.md names everything the code checks', () => {
  const doc = read('docs/invariants.md');

  it('documents every invariant the code knows, each under its own heading', () => {
    const names = new Set<string>([...SAFETY.map((s) => s.name), ...Object.values(VARIANT_PLAN).flatMap((p) => p.expect), ...Object.keys(INVARIANT_DOCS)]);
    expect([...names].sort()).toEqual([...INVARIANT_ORDER].sort());
    for (const n of INVARIANT_ORDER) expect(doc, n).toMatch(new RegExp(`^### ${n} `, 'm'));
  });

  it('names every regression variant', () => {
    const variants = new Set([...REGRESSION_VARIANTS.map((v) => v.name), ...Object.keys(VARIANT_PLAN)]);
    for (const v of variants) expect(doc, v).toContain(`\`${v}\``);
  });

  it('shows the full explore table', () => {
    for (const s of Object.keys(SCENARIOS)) expect(doc, s).toContain(s);
    expect(doc).toContain('$ node bin/xferstate.js explore\n');
  });
});

describe('docs/machines.md covers every machine and variant', () => {
  const doc = read('docs/machines.md');

  it('has a section and a diagram for every production machine', () => {
    for (const { machine } of PRODUCTION_MACHINES) {
      expect(doc, machine.id).toMatch(new RegExp(`^## ${machine.id}\\b`, 'm'));
      expect(doc, machine.id).toContain(`![${machine.id}](diagrams/${machine.id}.svg)`);
    }
  });

  it('describes every regression variant', () => {
    for (const v of REGRESSION_VARIANTS) expect(doc, v.name).toMatch(new RegExp(`^#### ${v.name} \\(`, 'm'));
  });
});
