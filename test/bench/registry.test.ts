import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BENCH_NAME, benchOfFile } from '../../src/commands/bench.js';

/**
 * `xferstate bench all` (what `npm run bench` runs) walks the compiled files of src/bench. Every file the
 * walk takes for a bench must be one: a CLI-safe name, a description and a runBench. A helper module
 * that was taken for a bench (nativeCuda) made `npm run bench` end with a usage error and skip the
 * benches after it.
 */
describe('bench registry', () => {
  const dir = fileURLToPath(new URL('../../src/bench/', import.meta.url));
  const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));

  it('finds the benches the README and the issues name', () => {
    const names = sources.map((f) => benchOfFile(f.replace(/\.ts$/, '.js'))).filter((n) => n !== null);
    expect(names).toEqual(expect.arrayContaining(['burst', 'explore', 'native', 'step']));
  });

  it.each(sources)('%s: a bench (named, described, runnable) or a helper starting with _', async (file) => {
    const name = benchOfFile(file.replace(/\.ts$/, '.js'));
    const mod = (await import(new URL(file, new URL('../../src/bench/', import.meta.url)).href)) as Record<string, unknown>;
    if (name === null) {
      expect(file.startsWith('_')).toBe(true);
      return;
    }
    expect(name).toMatch(BENCH_NAME);
    expect(typeof mod.description).toBe('string');
    expect(typeof mod.runBench).toBe('function');
  });
});
