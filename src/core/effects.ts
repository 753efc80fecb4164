import type { RemoteRef, RequestOutcome } from '../../machines/index.js';
import type { MachineEvent } from '../explore/world.js';

/**
 * Typed addresses of the actors of one server, and the effects the wiring asks a server to perform.
 * Both the real servers and the explorer's world interpret these; neither decides anything the
 * machines did not decide.
 */
export type Side = 'context' | 'generation';

/** Actors that exist per request. `handle` actors also carry an index (0 … N-1). */
export type RequestRole = 'lifecycle' | 'send' | 'handle' | 'lease' | 'recv';
/**
 * Actors that exist once per server: `session` (context: peerSession), `fences` (generation:
 * fenceClient), `admission` (KV blocks, both sides), `slots` (generation: receive slots).
 */
export type ServerRole = 'session' | 'fences' | 'admission' | 'slots';
export type Role = RequestRole | ServerRole;

export type RequestAddress = { side: Side; role: RequestRole; request: string; index?: number };
export type ServerAddress = { side: Side; role: ServerRole };
export type Address = RequestAddress | ServerAddress;

const SIDE_PREFIX: Record<Side, string> = { context: 'c:', generation: 'g:' };
const SERVER = '@server';

/**
 * The string form of an address, `c:r1.send`, `c:r1#0.handle`, `g:@server.slots`: the part after the
 * last '.' is the role (it picks the machine), the part before it the request (and handle index).
 */
export function addressKey(a: Address): string {
  const owner = 'request' in a ? `${a.request}${a.index !== undefined ? `#${a.index}` : ''}` : SERVER;
  return `${SIDE_PREFIX[a.side]}${owner}.${a.role}`;
}

export function parseAddress(key: string): Address {
  const side: Side = key.startsWith('g:') ? 'generation' : 'context';
  const body = key.slice(2);
  const dot = body.lastIndexOf('.');
  const owner = body.slice(0, dot);
  const role = body.slice(dot + 1) as Role;
  if (owner === SERVER) return { side, role: role as ServerRole };
  const hash = owner.indexOf('#');
  return hash < 0 ? { side, role: role as RequestRole, request: owner } : { side, role: role as RequestRole, request: owner.slice(0, hash), index: Number(owner.slice(hash + 1)) };
}

export const at = {
  req: (side: Side, role: RequestRole, request: string, index?: number): RequestAddress => (index === undefined ? { side, role, request } : { side, role, request, index }),
  server: (side: Side, role: ServerRole): ServerAddress => ({ side, role }),
};

/**
 * Messages on the control channel between the two servers. The same shapes as the executor's
 * ControlMessage, plus the allocation epoch on an info (a reference is good for one allocation only).
 */
export type PeerMessage =
  | { t: 'info'; id: string; remote: RemoteRef }
  | { t: 'ready'; id: string; ready: boolean }
  | { t: 'fence'; id: string }
  | { t: 'fenceAck'; id: string }
  /** Generation → context: the request was cancelled before its info was sent; it will never be asked for. */
  | { t: 'cancel'; id: string }
  /**
   * Context → generation: the request's transfer stopped before its data was complete (cancel, timeout,
   * transfer error) and every handle of it is quiescent: nothing more will be written (a fence
   * acknowledgement's fact, unasked).
   */
  | { t: 'stopped'; id: string };

/** What a server does. Everything a machine decides reaches the world through one of these. */
export type Effect =
  /** Deliver an event to an actor of the same server (dropped if the actor does not exist or finished). */
  | { type: 'deliver'; to: Address; event: MachineEvent }
  /** Create an actor (its entry actions run at once). */
  | { type: 'spawn'; at: Address; input: unknown }
  /** Send a control message to the peer server. */
  | { type: 'control.send'; msg: PeerMessage }
  /** Send the request's info: the interpreter names the blocks of the request's lease and its epoch. */
  | { type: 'control.sendInfo'; request: string }
  /** Create the native transfer of one handle: chunk `index` of `of` of the request, into `remote`. */
  | { type: 'native.create'; handle: RequestAddress; remote: RemoteRef | null; index: number; of: number }
  | { type: 'native.post'; handle: RequestAddress }
  /** Abort where the backend can (answered later by ABORTED); elsewhere only stop wanting it. */
  | { type: 'native.abort'; handle: RequestAddress }
  /** releaseXferReq; the interpreter answers at once with the RELEASE_RESULT the backend gave (inbound.releaseResult). */
  | { type: 'native.release'; handle: RequestAddress }
  /** Context side: answer FENCE_CONFIRMED to the lease once the request's native handles are quiescent. */
  | { type: 'native.whenQuiesced'; request: string; lease: RequestAddress }
  /** Take blocks for the request's lease from the pool (admission already decided they fit). */
  | { type: 'pool.allocate'; side: Side; request: string; need: number }
  /** The lease's blocks are back in the pool's free list. */
  | { type: 'pool.free'; side: Side; request: string }
  /** The lease's blocks leave the pool for good (fail closed). */
  | { type: 'pool.retire'; side: Side; request: string }
  /** Context side: prefill writes the request's KV data into its blocks. */
  | { type: 'prefill.fill'; request: string }
  /** The request's typed outcome for the user (exactly once per request per side). */
  | { type: 'report'; side: Side; request: string; outcome: RequestOutcome; reason: string }
  /** Observable counters and log lines; no behaviour depends on them. */
  | { type: 'metric'; side: Side; name: MetricName; request?: string };

export type MetricName = 'quarantineEntered' | 'quarantineReleasedByProof' | 'quarantineReleasedByFence' | 'errorResponse' | 'cancelRefused' | 'cancelSent';
