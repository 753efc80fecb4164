import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.js';

/**
 * Each subcommand lives in src/commands/<name>.ts and exports `register(program)`.
 * Loading them by name keeps the CLI free of a central switch that every feature edits.
 */
export const COMMANDS = ['explore', 'bench', 'burst', 'check-trace', 'inspect', 'diagram', 'docs', 'mutate'] as const;

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


/** Errors a user can act on from their message alone; anything else is a bug and keeps its stack. */
function isUserFacing(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return err instanceof UsageError || err.name === 'XferError' || code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR';
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (!isUserFacing(err) || process.env.XFERSTATE_DEBUG === '1') throw err;
    console.error(`xferstate: ${err.message}`);
    process.exitCode = 2;
  }
}
