import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { invariantsDocBlocks } from './invariantsDoc.js';
import { machinesDocBlocks } from './machinesDoc.js';
import { applyBlocks } from './markdown.js';
import { loadTypeScript, repoRoot } from './source.js';

/**
 * The generated sections of docs/machines.md and docs/invariants.md. Each document keeps its
 * hand-written prose; only the bodies between `<!-- generated:NAME:begin -->` and `...:end -->` are
 * produced here, from the machine definitions, the explorer's catalog and real explorer runs.
 */
export const GENERATED_DOCS = ['docs/machines.md', 'docs/invariants.md'] as const;
export type GeneratedDoc = (typeof GENERATED_DOCS)[number];

export async function generatedBlocks(root = repoRoot()): Promise<Record<GeneratedDoc, Map<string, string>>> {
  const ts = await loadTypeScript();
  return {
    'docs/machines.md': await machinesDocBlocks(ts, root),
    'docs/invariants.md': await invariantsDocBlocks(ts, root),
  };
}

export interface DocResult {
  file: GeneratedDoc;
  current: string;
  expected: string;
  upToDate: boolean;
}

/** Regenerate every document's generated blocks; with `write`, save those that changed. */
export async function regenerateDocs(opts: { write: boolean; root?: string }): Promise<DocResult[]> {
  const root = opts.root ?? repoRoot();
  const blocks = await generatedBlocks(root);
  return GENERATED_DOCS.map((file) => {
    const path = join(root, file);
    const current = readFileSync(path, 'utf8');
    const expected = applyBlocks(current, blocks[file], file);
    if (opts.write && expected !== current) writeFileSync(path, expected);
    return { file, current, expected, upToDate: expected === current };
  });
}
