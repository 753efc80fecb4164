import type { ComposedState } from './composed.js';

/**
 * M12, a failure names its cause: every outcome reported to a user carries the reason that matches it —
 * a completed request no error reason, a cancelled one the reason `cancelled`, and a failed one a real
 * cause (`timedOut`, `transferFailed`, `corrupted`), never `none`. A failure without a cause is what a
 * user cannot act on (retry, resize, report corruption); M3 asks only that an outcome is typed, M10
 * which outcome a cancel gets. Ground truth: the report effect as the servers would send it (outcome
 * and reason), read at the step that makes it.
 */
const CAUSES: Readonly<Record<string, readonly string[]>> = {
  completed: ['none'],
  cancelled: ['cancelled'],
  failed: ['timedOut', 'transferFailed', 'corrupted'],
};

export function causeMismatch(before: ComposedState, after: ComposedState): string | null {
  for (const [k, rep] of Object.entries(after.reports)) {
    if (before.reports[k] || rep.reason === undefined) continue;
    const ok = CAUSES[rep.outcome];
    if (ok && !ok.includes(rep.reason)) return `${k} reported ${rep.outcome} with reason '${rep.reason}' (expected ${ok.map((r) => `'${r}'`).join(' or ')})`;
  }
  return null;
}
