import type { Choice } from './composed.js';

/**
 * M11, no deadline needed when nothing goes wrong: in a prompt run whose only faults, if any, are user
 * cancels (no transfer error, duplicate, reordering, loss or death; every step of the network, the
 * backend and the executors' loops taken before any deadline is due), no deadline fires. A cancel is a
 * user's decision, not a failure: each side can tell the other what it decided (a not-ready, a peer
 * cancel, the data and its sync notification, a fence answered at once), so nothing needs to time out. Every deadline is a timeout
 * that a user waits out: a fault-free run that needs one has kept a request, a lease or a message
 * waiting for something that was never going to come — resources held for the whole timeout (a lease
 * left in quarantine and fenced, a request kept until its transfer timeout), never harm to a byte, so
 * M1–M8 accept it.
 *
 * Ground truth: the world's own step set (src/explore/promptRun.ts offers a deadline only when no other
 * step is enabled) and the faults taken on the run. It is checked over the prompt runs' search, on the
 * step that fires the deadline.
 */
export function neededDeadline(faults: string, c: Pick<Choice, 'label'>): string | null {
  if (!c.label.startsWith('deadline ') || !onlyCancels(faults)) return null;
  const how = faults === '' ? 'with no fault' : `with only user cancels (${faults.split(',').filter((f) => f.startsWith('cancel ')).join(',')})`;
  return `${how} and a prompt network a deadline fires: '${c.label.slice('deadline '.length)}' (nothing else could happen)`;
}

/**
 * A fault history (comma-separated records: faultRecord's `cancel <side> <r>`, and M13's `early <side> <r>`
 * beside a cancel made before any transfer existed) of user cancels only, or of none.
 */
function onlyCancels(faults: string): boolean {
  return faults === '' || faults.split(',').every((f) => f.startsWith('cancel ') || f.startsWith('early '));
}
