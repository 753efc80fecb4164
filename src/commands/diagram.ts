import type { Command } from 'commander';
import { writeDiagrams } from '../inspect/diagrams.js';

export interface DiagramOptions {
  machine?: string;
  out: string;
  variants?: boolean;
}

export function register(program: Command): void {
  program
    .command('diagram')
    .description('write an SVG per production machine (Graphviz via WASM, offline), rendered from the machine definitions')
    .option('--machine <name>', 'only this machine (production id, or a regression variant name)')
    .option('--out <dir>', 'output directory', 'docs/diagrams')
    .option('--variants', 'also the regression variants (into <out>/variants/)')
    .action(async (opts: DiagramOptions) => {
      const written = await writeDiagrams(opts.out, { machine: opts.machine, variants: opts.variants });
      for (const f of written) console.log(f);
    });
}
