/**
 * Why a surviving mutant survives, where the tool cannot compute it: mutant name → a reason a reviewer
 * can check against the machine and the scenario code. `xferstate mutate` prints "no reason recorded"
 * for a survivor missing here. An entry whose mutant is killed or equivalent is harmless but stale; the
 * mutate tests fail on entries that name no mutant at all.
 *
 * Most reasons name a gap in today's checks rather than a harmless mutant: they are the to-do list of
 * the composed exploration (issue 9), not excuses.
 */

const EPOCH_TRUSTED =
  "S4 and S5 skip a lease whose own `epoch` is 0 (src/explore/invariants.ts), so without the bump they never fire: the check trusts the machine it checks. A memory model that tracks each block's owner outside the machine (issue 9, item 3) would kill it";
const PROOF_UNREAD = "the lease's `proof` field is written but read by no invariant and no scenario: only the state reached (free or quarantined) is checked";
const OUTCOME_UNREAD =
  "the executor never hears the outcome; the lifecycle's own kvTransferTimeout then ends the request as an error and frees it once the side is quiescent. No invariant requires a published outcome to reach the lifecycle (S2 only bounds reports to one)";
const FAIL_CLOSED_ALLOWED = 'the lease is retired (fail closed) where the original would fence the peer first; L5 accepts retired blocks and no invariant asks that a fence be tried';

export const SURVIVOR_REASONS: Readonly<Record<string, string>> = {
  'blockLease: drop action bumpEpoch in free ALLOCATE': EPOCH_TRUSTED,
  'blockLease: drop action recordProof in allocated RELEASE': PROOF_UNREAD,
  'blockLease: drop action recordProof in exposed RELEASE[0]': PROOF_UNREAD,
  'blockLease: drop action recordProof in quarantined QUIESCENCE_PROOF': PROOF_UNREAD,
  'blockLease: drop action recordProof in fencing QUIESCENCE_PROOF': PROOF_UNREAD,
  'blockLease: drop action recordProof in fencing FENCE_CONFIRMED': PROOF_UNREAD,
  'blockLease: retarget free ALLOCATE allocated → exposed':
    'stricter, not unsafe: a fresh lease counts as already exposed, so releasing it needs proof or sends it to quarantine',
  'blockLease: retarget quarantined after quarantineMaxAge fencing → retired': FAIL_CLOSED_ALLOWED,
  'blockLease: drop action fencePeer in quarantined after quarantineMaxAge':
    `without the fence request the peer never confirms (the scenarios answer only a requested fence), so fenceTimeout retires the lease: ${FAIL_CLOSED_ALLOWED}`,
  'contextSend: drop action signalPeer in sender.unwinding.signal WORKER_STEP':
    "contextCancel's generation side is a stand-in: the not-ready signal only sets env.peerSignal, which no invariant reads. The contract between the sides (not-ready exactly when the peer asked and no write was posted) is unchecked until both sides are explored together (issue 9, item 2)",
  'contextSend: drop action reportOutcome in future.pending STATUS_POLL': OUTCOME_UNREAD,
  'generationReceive: drop action reportOutcome in future.pending STATUS_POLL': OUTCOME_UNREAD,
  'requestLifecycle: drop action noteQuiescent in (root) SIDE_QUIESCENT':
    'fail closed where the original frees: a side that finished before the request reached a terminal state is forgotten, so the request waits out quiescenceTimeout and sends its blocks to quarantine. No invariant asks that a quiescent side\'s blocks be reused',
  'requestLifecycle: drop action respondError in DISAGG_TRANS_ERROR entry': 'the error response only counts env.errorResponses, which no invariant reads: nothing checks that a failed request is answered',
  'requestLifecycle: drop deadline quiescenceTimeout in DISAGG_TRANS_ERROR.awaitingQuiescence':
    "L1 counts a state with an `always` transition as progressing even when that transition is guarded, so the lost deadline is not flagged; every explored side does report quiescence, so no explored world waits forever (a side that never reports is not modelled)",
};
