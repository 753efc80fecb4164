import { Command, CommanderError } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT, OperationalError, UsageError } from './errors.js';

/**
 * Each subcommand lives in src/commands/<name>.ts and exports `register(program)`.
 * Loading them by name keeps the CLI free of a central switch that every feature edits.
 */
export const COMMANDS = ['explore', 'bench', 'burst', 'check-trace', 'inspect', 'diagram', 'docs', 'simulate', 'mutate', 'conform'] as const;

export interface CommandModule {
  register(program: Command): void;
}

export async function buildProgram(): Promise<Command> {
  const program = new Command();
  program
    .name('xferstate')
    .description('KV-cache transfer lifecycle: explored state machines over a native NIXL-shaped transfer layer')
    .showHelpAfterError()
    // Commander exits 1 on a bad option by default; 1 means "the run found a defect" here.
    .exitOverride();
  for (const name of COMMANDS) {
    const file = new URL(`./commands/${name}.js`, import.meta.url);
    if (!existsSync(fileURLToPath(file))) continue;
    const mod = (await import(file.href)) as CommandModule;
    mod.register(program);
  }
  return program;
}


/** Exit code for an error, or null when it is a bug (nobody anticipated it): that one keeps its stack. */
export function exitCodeOf(err: unknown): number | null {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (!(err instanceof Error)) return null;
  if (err instanceof OperationalError) return err.exitCode;
  const code = (err as { code?: unknown }).code;
  // A missing or unreadable input file named on the command line is the caller's to fix.
  if (err instanceof UsageError || err.name === 'XferError' || code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') return EXIT.usage;
  return null;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const exitCode = exitCodeOf(err);
    // Commander has already printed its own message (or the help).
    if (err instanceof CommanderError) return void (process.exitCode = exitCode!);
    if (process.env.XFERSTATE_DEBUG === '1') console.error(err);
    else if (exitCode === null) console.error(`xferstate: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    else console.error(`xferstate: ${(err as Error).message}`);
    process.exitCode = exitCode ?? EXIT.internal;
  }
}
