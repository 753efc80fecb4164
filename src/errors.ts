/**
 * Exit codes of the CLI, one per kind of outcome, so that a script can tell "you asked for something
 * wrong" from "the machine could not do it" from "the run found a defect". Documented in README.md.
 */
export const EXIT = {
  ok: 0,
  /** The run worked and found something wrong: corrupted, leaked or stuck; a trace that does not conform. */
  checkFailed: 1,
  /** A bad option or argument: fix the command line. */
  usage: 2,
  /** A port that cannot be listened on (in use, not permitted, address not available). */
  portUnavailable: 3,
  /** A file that cannot be written (a --trace path in a missing or read-only directory). */
  cannotWrite: 4,
  /** A server process did not start (e.g. its block pool does not fit in shared memory). */
  serverStartFailed: 5,
  /** A server process died during the run; a partial report was printed. */
  serverDied: 6,
  /** Stopped by SIGINT (Ctrl-C) or SIGTERM: 128 + the signal's number, as shells report it; a partial report was printed. */
  interrupted: 130,
  terminated: 143,
  /** A bug: an error nobody anticipated; its stack is printed. */
  internal: 70,
} as const;

/** An error in what the caller asked for (a bad option, an unknown name): the CLI prints one line, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type OperationalKind = 'portUnavailable' | 'cannotWrite' | 'serverStartFailed' | 'serverDied' | 'interrupted' | 'terminated';

/**
 * The environment refused a valid request (a port in use, an unwritable path, a server that could not
 * start or died): one line, and an exit code of its own per kind, distinct from usage errors.
 */
export class OperationalError extends Error {
  override readonly name = 'OperationalError';
  constructor(
    readonly kind: OperationalKind,
    message: string,
  ) {
    super(message);
  }

  get exitCode(): number {
    return EXIT[this.kind];
  }
}

/** One line for a Node system error: "permission denied" rather than "EACCES: permission denied, open '…'". */
export function systemErrorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const known: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a component of the path is not a directory',
    EISDIR: 'it is a directory',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    EADDRINUSE: 'the address is already in use',
    EADDRNOTAVAIL: 'the address is not available on this machine',
  };
  if (typeof e?.code === 'string' && known[e.code]) return known[e.code]!;
  return typeof e?.message === 'string' ? e.message : String(err);
}
