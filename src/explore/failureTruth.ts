import type { ComposedState } from './composed.js';

/**
 * M23, a transfer failure names a transfer: the context side reports a request failed with the reason
 * `transferFailed` only when a native transfer of that request was created. M12 asks that a failure has
 * a cause of the right kind; this asks that the cause happened. A request fenced, timed out or cancelled
 * before it sent anything that is reported as a failed transfer sends its user (and whoever retries or
 * resizes) after a transfer that never existed. Ground truth: the report as the server sends it and the
 * backend's native transfers (the world never forgets one), read at the step that reports.
 */
export function untrueTransferFailure(before: ComposedState, after: ComposedState): string | null {
  for (const [k, rep] of Object.entries(after.reports)) {
    if (before.reports[k] || rep.reason !== 'transferFailed' || !k.startsWith('context:')) continue;
    const r = k.slice('context:'.length);
    const prefix = `c:${r}#`;
    if (!Object.keys(after.nat).some((n) => n.startsWith(prefix))) return `${k} reported failed with reason 'transferFailed', but no native transfer of ${r} was ever created`;
  }
  return null;
}
