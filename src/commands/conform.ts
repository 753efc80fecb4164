import type { Command } from 'commander';
import { runConform } from '../conform/conform.js';
import { COMPOSED_SCENARIOS } from '../explore/composedCatalog.js';
import { UsageError } from '../errors.js';
import { intOption } from './options.js';

/** Exit status when the implementation diverged from the model (usage errors exit 2). */
export const EXIT_DIVERGED = 1;

export function register(program: Command): void {
  program
    .command('conform')
    .description('drive the real context and generation servers along paths that cover every edge of the composed model, comparing actor states, messages, reports and block bytes after every step')
    .option('--scenario <name>', `composed scenario (${Object.keys(COMPOSED_SCENARIOS).join(', ')})`, 'composed/reuse')
    .option('--max-states <n>', 'states of the composed graph to cover at most', '1000')
    .option('--json', 'print {paths, edgesCovered, edgesTotal, divergences: [{path, step, expected, actual}], …}')
    .action(async (opts: { scenario: string; maxStates: string; json?: boolean }) => {
      if (!COMPOSED_SCENARIOS[opts.scenario]) throw new UsageError(`unknown scenario '${opts.scenario}'; known: ${Object.keys(COMPOSED_SCENARIOS).join(', ')}`);
      const maxStates = intOption('max-states', opts.maxStates, 1, 1_000_000);
      const t0 = performance.now();
      const r = await runConform({ scenario: opts.scenario, maxStates });
      if (opts.json) console.log(JSON.stringify(r));
      else {
        console.log(`${r.scenario}: ${r.states} model states${r.truncated ? ' (graph cut at the bound)' : ''}, ${r.edgesTotal} edges; ${r.paths} paths covered ${r.edgesCovered} edges (${((100 * r.edgesCovered) / Math.max(1, r.edgesTotal)).toFixed(1)} %), ${r.unrealizable} steps the real backend cannot take; ${r.divergences.length} divergence(s) in ${Math.round(performance.now() - t0)} ms`);
        for (const d of r.divergences.slice(0, 20)) console.log(`  path ${d.path} step ${d.step} (${d.label}): expected ${d.expected}, actual ${d.actual}`);
      }
      if (r.divergences.length > 0) process.exitCode = EXIT_DIVERGED;
    });
}
