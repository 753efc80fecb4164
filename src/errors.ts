/** An error in what the caller asked for (a bad option, an unknown name): the CLI prints one line, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
