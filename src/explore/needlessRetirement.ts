import type { RequestAddress } from '../core/wiring.js';
import { parseAddress } from '../core/wiring.js';
import type { ComposedState, ComposedWorld } from './composed.js';
import { isFault } from './promptRun.js';

/**
 * M9, no needless retirement: a generation block leaves the pool for good only when something calls
 * for it. Retiring is failing closed — it harms no one's bytes, so M1–M6 accept it — but a block
 * retired when nothing could still write into it and nothing was lost is capacity thrown away for good.
 * M7 asks this of the prompt runs; this asks it on every explored step, where deadlines may also fire
 * early (that is how fences are reached at all).
 *
 * A step that retires a block (ground truth: the memory model's owner becomes 'retired') is needless
 * unless one of these holds in the world it starts from:
 * - a control message or notification was lost: the acknowledgement may be gone (a process death is no
 *   excuse: a dead context process writes nothing, and the generation side sees its socket close);
 * - it is early: some step of the peer, the network, the backend or the executors' loops that injects
 *   no fault (not a deadline, cancel, error, duplicate, reordering, loss or death) is enabled — the
 *   acknowledgement could still come, and a deadline may beat it (timed deadlines model a slow peer);
 * - a native transfer into the block can still write (posted, not terminal): retiring is the answer;
 * - a native transfer of the block's owner allocation was released while still posted on a backend
 *   whose release in flight does not quiesce (UCX): its initiator can never learn when the bytes stopped
 *   (the completion is not sent after a release), so no acknowledgement of a fence could be sound.
 *
 * It reads the memory model, the native transfers, the fault budget, the dead processes and the labels
 * of the enabled steps: all of it ground truth or the world's own step set, none of it machine state.
 * The labels are what a strong bisimulation matches, so bisimilar graphs agree on it.
 */
export function needlessRetirement(world: ComposedWorld, before: ComposedState, after: ComposedState, label: string): string | null {
  if (before.blocks === after.blocks) return null;
  const retired: number[] = [];
  after.blocks.forEach((b, i) => {
    if (b.owner === 'retired' && before.blocks[i]!.owner !== 'retired') retired.push(i);
  });
  if (retired.length === 0) return null;
  const b = world.cfg.bounds;
  if (before.budget.losses < b.losses) return null;
  if (world.choices(before).some((c) => !c.label.startsWith('deadline ') && !isFault(c))) return null;
  for (const i of retired) {
    const owner = before.blocks[i]!.owner;
    const at = owner === null ? -1 : owner.lastIndexOf('@');
    const request = at < 0 ? null : owner!.slice(0, at);
    const epoch = at < 0 ? NaN : Number(owner!.slice(at + 1));
    const into = Object.entries(before.nat).filter(([, x]) => x.remote !== null && x.remote.blocks.includes(i));
    if (into.some(([, x]) => x.phase === 'posted')) continue;
    const ofOwner = into.filter(([k, x]) => (parseAddress(k) as RequestAddress).request === request && x.remote!.epoch === epoch);
    if (ofOwner.some(([, x]) => x.releasedInFlight === true)) continue;
    const what = into.length === 0 ? 'no transfer ever wrote into it' : `its transfers are ${into.map(([k, x]) => `${k.slice(2)} ${x.phase}${x.released ? ' released' : ''}`).join(', ')}`;
    return `generation block ${i} (owned by ${owner ?? 'nobody'}) retired by '${label}' with nothing lost, nothing else left to happen and no transfer that can still write into it (${what})`;
  }
  return null;
}
