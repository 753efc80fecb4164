import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * Every snippet in the embedding guide and the inspector page runs: each ```js / ```ts block is part of
 * a file that runs (an example in docs/examples/, run here through the package's public name, or the
 * package's own source), no snippet imports a repository path, and each documented `$ node
 * docs/examples/…` output is what the example prints now.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = ['docs/embedding.md', 'docs/inspector.md'];
const examples = readdirSync(join(root, 'docs/examples')).filter((f) => f.endsWith('.mjs'));
const sources = (dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

const blocks = (md: string, langs: string[]) => [...md.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => langs.includes(m[1]!)).map((m) => m[2]!.replace(/\n$/, ''));

/** Whether `block`'s lines appear consecutively in `text`, each with the same extra indentation. */
function contains(text: string, block: string): boolean {
  const lines = text.split('\n').map((l) => l.trimEnd());
  const want = block.split('\n').map((l) => l.trimEnd());
  for (let i = 0; i + want.length <= lines.length; i++) {
    const at = lines[i]!.indexOf(want[0]!.trimStart());
    if (at < 0 || lines[i]!.slice(0, at).trim() !== '' || !lines[i]!.endsWith(want[0]!)) continue;
    const indent = lines[i]!.slice(0, lines[i]!.length - want[0]!.length);
    if (want.every((w, k) => lines[i + k] === (w === '' ? '' : indent + w))) return true;
  }
  return false;
}

const runExample = async (f: string) => (await promisify(execFile)(process.execPath, [join(root, 'docs/examples', f)], { cwd: root, encoding: 'utf8', timeout: 60_000 })).stdout;
// Ports and random producer ids differ from run to run.
const normalise = (s: string) => s.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT').replace(/[0-9a-f]{8}\/x:\d+/g, 'PRODUCER/x:N').trim();

describe('doc snippets', () => {
  const files = Object.fromEntries([...examples.map((f) => join('docs/examples', f)), ...sources('src')].map((f) => [f, readFileSync(join(root, f), 'utf8')]));
  for (const doc of DOCS) {
    const md = readFileSync(join(root, doc), 'utf8');
    it(`${doc}: every code block is part of a file that runs, importing the package by its public name`, () => {
      const code = blocks(md, ['js', 'ts', 'mjs']);
      expect(code.length).toBeGreaterThan(0);
      for (const b of code) {
        expect(b, 'a snippet imports a repository path').not.toMatch(/from '\.{1,2}\//);
        expect(Object.values(files).some((t) => contains(t, b)), `not found verbatim in docs/examples/*.mjs or src/:\n${b}`).toBe(true);
      }
    });
  }
  for (const f of examples) {
    it(`docs/examples/${f} runs and prints what the docs show`, { timeout: 90_000 }, async () => {
      const out = await runExample(f);
      for (const doc of DOCS) {
        const md = readFileSync(join(root, doc), 'utf8');
        for (const m of md.matchAll(new RegExp(`^\\$ node docs/examples/${f.replace('.', '\\.')}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))) {
          expect(normalise(out), `${doc}: output of ${f}`).toBe(normalise(m[1]!));
        }
      }
      expect(files[join('docs/examples', f)], `${f} imports the package by its public name`).toMatch(/from 'xferstate(\/\w+)?'/);
    });
  }
});
