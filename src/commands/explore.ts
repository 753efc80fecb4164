import type { Command } from 'commander';
import { combinations, expectedViolations } from '../explore/catalog.js';
import type { ExploreResult, ExploredGraph } from '../explore/explorer.js';
import { coverage } from '../explore/coverage.js';
import type { MachineCoverage } from '../explore/coverage.js';
import { blockLeaseMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';
import { exploreCombination } from '../explore/explorer.js';

export interface ExploreOptions {
  scenario?: string;
  variant?: string;
  json?: boolean;
}

/** A shipped combination passes with no violation; a regression variant passes when its bug is found. */
export function verdict(r: ExploreResult): { ok: boolean; note: string } {
  if (r.shipped) return r.violations.length === 0 ? { ok: true, note: 'clean' } : { ok: false, note: 'VIOLATED' };
  const expected = expectedViolations(r.variant, r.scenario);
  const missing = expected.filter((e) => !r.violations.some((v) => v.invariant === e));
  if (r.violations.length === 0) return { ok: false, note: 'NOT CAUGHT' };
  return missing.length === 0 ? { ok: true, note: 'caught' } : { ok: false, note: `caught, but not ${missing.join(', ')}` };
}

const PRODUCTION = [transferHandleMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, blockLeaseMachine];

export function runExplore(opts: ExploreOptions, print: (line: string) => void = console.log): { results: ExploreResult[]; ok: boolean; coverage: MachineCoverage[] } {
  const combos = combinations({ scenario: opts.scenario, variant: opts.variant });
  const results: ExploreResult[] = [];
  const shippedGraphs: ExploredGraph[] = [];
  let ok = true;
  if (!opts.json) print(`${'scenario'.padEnd(24)}${'variant'.padEnd(21)}${'states'.padStart(7)}${'edges'.padStart(8)}${'ms'.padStart(7)}  violations`);
  for (const c of combos) {
    const r = exploreCombination(c, c.variant === 'shipped' ? (g) => shippedGraphs.push(g) : undefined);
    results.push(r);
    const v = verdict(r);
    ok &&= v.ok;
    if (opts.json) continue;
    const names = r.violations.map((x) => x.invariant).join(',') || '-';
    print(`${r.scenario.padEnd(24)}${r.variant.padEnd(21)}${String(r.states).padStart(7)}${String(r.edges).padStart(8)}${String(r.ms).padStart(7)}  ${names.padEnd(16)} ${v.note}`);
  }
  // Coverage of the production machines by the shipped scenarios explored in this run.
  const cov = shippedGraphs.length > 0 ? coverage(PRODUCTION, shippedGraphs) : [];
  if (opts.json) {
    print(JSON.stringify({ results: results.map((r) => ({ ...r, violations: r.violations.map((v) => ({ invariant: v.invariant, message: v.message, path: v.path })) })), coverage: cov }));
    return { results, ok, coverage: cov };
  }
  for (const r of results) {
    if (r.violations.length === 0) continue;
    print(`\n${r.scenario} × ${r.variant}:`);
    for (const v of r.violations) {
      print(`  ${v.invariant}: ${v.message}`);
      v.path.forEach((s, i) => print(`    ${String(i + 1).padStart(2)}. ${s}`));
    }
  }
  if (cov.length > 0) {
    print(`\ncoverage of the production machines by the shipped scenarios above (states, handled state×event pairs):`);
    for (const c of cov) {
      print(`  ${c.machine.padEnd(18)} states ${c.states.covered}/${c.states.total}, transitions ${c.transitions.covered}/${c.transitions.total}`);
      if (c.states.missing.length) print(`    states never reached: ${c.states.missing.join(', ')}`);
      if (c.transitions.missing.length) print(`    pairs never exercised: ${c.transitions.missing.join(', ')}`);
    }
  }
  const shipped = results.filter((r) => r.shipped);
  const variants = results.filter((r) => !r.shipped);
  const totalMs = results.reduce((n, r) => n + r.ms, 0);
  print(
    `\n${shipped.filter((r) => r.violations.length === 0).length}/${shipped.length} shipped combinations clean, ` +
      `${variants.filter((r) => verdict(r).ok).length}/${variants.length} regression variants caught, ${totalMs} ms`,
  );
  return { results, ok, coverage: cov };
}

export function register(program: Command): void {
  program
    .command('explore')
    .description('explore every ordering of the machines and their environment; check S1–S10 and L1–L5')
    .option('--scenario <name>', 'only this scenario (or scenario family, e.g. contextCancel)')
    .option('--variant <name>', 'only this variant ("shipped" for the production machines)')
    .option('--json', 'print JSON')
    .option('--inspect', 'then serve the inspector, whose counterexample viewer steps through these results')
    .action(async (opts: ExploreOptions & { inspect?: boolean }) => {
      const { ok } = runExplore(opts);
      process.exitCode = ok ? 0 : 1;
      if (!opts.inspect) return;
      const inspector = await (await import('../inspect/index.js')).startInspector({ port: 0 });
      console.error(`inspector: ${inspector.url} (counterexamples tab; close the page or press Ctrl-C to exit)`);
      await Promise.race([inspector.pagesGone(), new Promise((r) => process.once('SIGINT', r))]);
      await inspector.close();
    });
}
