import type { Command } from 'commander';

/**
 * `xferstate docs`: regenerate the generated sections of docs/machines.md and docs/invariants.md
 * (`--check` only reports drift). The generator reads the TypeScript sources (a dev dependency), so it
 * is loaded only when this command runs.
 */
export function register(program: Command): void {
  program
    .command('docs')
    .description('regenerate the generated sections of docs/machines.md and docs/invariants.md')
    .option('--check', 'do not write; exit 1 if a generated section is out of date')
    .action(async (opts: { check?: boolean }) => {
      const { regenerateDocs } = await import('../docs/index.js');
      const results = await regenerateDocs({ write: !opts.check });
      for (const r of results) console.log(`${r.file}: ${r.upToDate ? 'up to date' : opts.check ? 'OUT OF DATE' : 'regenerated'}`);
      if (opts.check && results.some((r) => !r.upToDate)) process.exitCode = 1;
    });
}
