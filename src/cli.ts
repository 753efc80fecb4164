import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Each subcommand lives in src/commands/<name>.ts and exports `register(program)`.
 * Loading them by name keeps the CLI free of a central switch that every feature edits.
 */
export const COMMANDS = ['explore', 'bench', 'burst', 'check-trace', 'inspect', 'diagram', 'docs'] as const;

export interface CommandModule {
  register(program: Command): void;
}

export async function buildProgram(): Promise<Command> {
  const program = new Command();
  program
    .name('xferstate')
    .description('KV-cache transfer lifecycle: explored state machines over a native NIXL-shaped transfer layer')
    .showHelpAfterError();
  for (const name of COMMANDS) {
    const file = new URL(`./commands/${name}.js`, import.meta.url);
    if (!existsSync(fileURLToPath(file))) continue;
    const mod = (await import(file.href)) as CommandModule;
    mod.register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  await program.parseAsync(argv);
}
