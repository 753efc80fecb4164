import { join } from 'node:path';
import type * as TS from 'typescript';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import { VARIANT_PLAN } from '../explore/catalog.js';
import type { Combination } from '../explore/catalog.js';
import { exploreCombination } from '../explore/explorer.js';
import type { ExploreResult, Violation } from '../explore/explorer.js';
import type { InvariantName } from '../explore/invariants.js';
import { SAFETY } from '../explore/invariants.js';
import { INVARIANT_DOCS, INVARIANT_ORDER, LIVENESS_TITLES } from './catalog.js';
import { code, codes, table } from './markdown.js';
import { constStringRecord } from './source.js';

export const REGRESSION_TEST_FILE = 'test/explore/regressions.test.ts';

export function invariantTitle(name: InvariantName): string {
  const s = SAFETY.find((x) => x.name === name);
  if (s) return s.title;
  const l = LIVENESS_TITLES[name as keyof typeof LIVENESS_TITLES];
  if (!l) throw new Error(`no title for ${name}`);
  return l;
}

function checkedAs(name: InvariantName): string {
  const s = SAFETY.find((x) => x.name === name);
  if (s) {
    const kinds = [s.state ? 'on every reachable world' : null, s.edge ? 'on every explored step (edge)' : null].filter(Boolean);
    return `safety predicate, ${kinds.join(' and ')}`;
  }
  return name === 'L1' ? 'structurally, on each machine definition' : 'graph analysis over the explored graph';
}

/** The (variant, scenario) pairs whose plan says they break this invariant. */
export function plannedCombinations(name: InvariantName): Combination[] {
  return Object.entries(VARIANT_PLAN).flatMap(([variant, plan]) => (plan.expect.includes(name) ? plan.scenarios.map((scenario) => ({ scenario, variant })) : []));
}

/** The describe/it name regressions.test.ts gives a (variant, scenario, invariant) check. */
export function regressionTestName(titles: Record<string, string>, c: Combination, name: InvariantName): string {
  const v = REGRESSION_VARIANTS.find((x) => x.name === c.variant);
  const title = titles[c.variant];
  if (!v || !title) throw new Error(`no regression test title for ${c.variant}`);
  return `${title} (${v.name}, ${v.bugClass}) > ${c.scenario}: the explorer finds a ${name} counterexample; the shipped machines have none`;
}

/** The violation lines `xferstate explore` prints for one invariant of one combination (same format as src/commands/explore.ts). */
export function violationReport(c: Combination, v: Violation): string {
  return [`${c.scenario} × ${c.variant}:`, `  ${v.invariant}: ${v.message}`, ...v.path.map((s, i) => `    ${String(i + 1).padStart(2)}. ${s}`)].join('\n');
}

export class ExploreCache {
  private readonly results = new Map<string, ExploreResult>();
  get(c: Combination): ExploreResult {
    const key = `${c.scenario}\u0000${c.variant}`;
    if (!this.results.has(key)) this.results.set(key, exploreCombination(c));
    return this.results.get(key)!;
  }
}

export function summaryBlock(): string {
  return table(
    ['invariant', 'what it demands (title in the code)', 'checked', 'prevents', 'variants whose counterexample shows it'],
    INVARIANT_ORDER.map((name) => {
      const planned = plannedCombinations(name);
      const variants = [...new Set(planned.map((c) => c.variant))];
      const witness = INVARIANT_DOCS[name].witness;
      return [
        `[${name}](#${name.toLowerCase()})`,
        invariantTitle(name),
        checkedAs(name),
        INVARIANT_DOCS[name].prevents.join(', '),
        variants.length ? codes(variants) : witness ? `none planned; ${code(witness.variant)} shows it incidentally` : 'none',
      ];
    }),
  );
}

export function invariantBlock(name: InvariantName, titles: Record<string, string>, cache: ExploreCache): string {
  const d = INVARIANT_DOCS[name];
  const planned = plannedCombinations(name);
  const out: string[] = [];
  out.push(`- **Demands** (title in the code): ${invariantTitle(name)}`);
  out.push(`- **Checked**: ${checkedAs(name)}, by ${d.predicate}`);
  out.push(`- **Prevents**: ${d.prevents.join(', ')}`);
  if (planned.length) {
    const byVariant = new Map<string, string[]>();
    for (const c of planned) byVariant.set(c.variant, [...(byVariant.get(c.variant) ?? []), c.scenario]);
    out.push(
      `- **Broken by** (\`VARIANT_PLAN\`): ${[...byVariant].map(([v, scs]) => `${code(v)} (${REGRESSION_VARIANTS.find((x) => x.name === v)?.bugClass}) in ${codes(scs)}`).join('; ')}`,
    );
    out.push(`- **Tests** (\`${REGRESSION_TEST_FILE}\`):`);
    for (const c of planned) out.push(`  - ${regressionTestName(titles, c, name)}`);
  } else {
    out.push('- **Broken by**: no variant lists it in `VARIANT_PLAN`, so no test asserts a counterexample for it.');
  }
  const shown = planned[0] ?? d.witness;
  if (!shown) return out.join('\n');
  const v = cache.get(shown).violations.find((x) => x.invariant === name);
  if (!v) throw new Error(`${shown.variant} in ${shown.scenario} does not break ${name}`);
  out.push('');
  out.push(
    `Shortest counterexample${planned.length ? '' : ' (incidental: the variant is planned for other invariants)'}, as printed by ` +
      `\`node bin/xferstate.js explore --variant ${shown.variant} --scenario ${shown.scenario}\` (the ${name} lines of its report):`,
  );
  out.push('', '```text', violationReport(shown, v), '```');
  return out.join('\n');
}

export async function invariantsDocBlocks(ts: typeof TS, root: string): Promise<Map<string, string>> {
  const titles = constStringRecord(ts, join(root, REGRESSION_TEST_FILE), 'TITLES');
  const cache = new ExploreCache();
  const blocks = new Map<string, string>();
  blocks.set('invariants:summary', summaryBlock());
  for (const name of INVARIANT_ORDER) blocks.set(`invariant:${name}`, invariantBlock(name, titles, cache));
  return blocks;
}
