import type { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';

/** A benchmark lives in src/bench/<name>.ts and exports `runBench`. */
export interface BenchModule {
  /** One-line description shown by `xferstate bench --help`. */
  description: string;
  /** Runs the benchmark, prints a table (or JSON when asked) and returns the process exit code. */
  runBench(opts: { json: boolean; args: string[] }): Promise<number>;
}

const benchDir = new URL('../bench/', import.meta.url);

/** What a bench may be called on the command line. */
export const BENCH_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * The bench a compiled file in src/bench is, or null: helpers of a bench start with `_` (a helper that
 * was listed made `bench all` stop with a usage error before the benches after it).
 */
export function benchOfFile(file: string): string | null {
  return file.endsWith('.js') && !file.startsWith('_') ? file.slice(0, -3) : null;
}

export function listBenches(): string[] {
  const dir = fileURLToPath(benchDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map(benchOfFile)
    .filter((n): n is string => n !== null)
    .sort();
}

export async function loadBench(name: string): Promise<BenchModule> {
  if (!BENCH_NAME.test(name) || !listBenches().includes(name)) {
    throw new UsageError(`unknown benchmark '${name}'; known: ${listBenches().join(', ')}`);
  }
  return (await import(new URL(`${name}.js`, benchDir).href)) as BenchModule;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('run a benchmark (or "all"); results are ratios against a baseline measured in the same run')
    .argument('<name>', `benchmark name or "all"`)
    .argument('[args...]', 'benchmark-specific options (e.g. --backend shm,nixl)')
    .option('--json', 'print JSON instead of a table')
    .allowUnknownOption(true)
    .action(async (name: string, args: string[], opts: { json?: boolean }) => {
      const json = Boolean(opts.json) || args.includes('--json');
      const rest = args.filter((a) => a !== '--json');
      const names = name === 'all' ? listBenches() : [name];
      let code = 0;
      for (const n of names) {
        const bench = await loadBench(n);
        if (!json) console.log(`\n== bench ${n}: ${bench.description}`);
        code = Math.max(code, await bench.runBench({ json, args: rest }));
      }
      process.exitCode = code;
    });
}
