/**
 * A server's live requests by id, with the last one found kept beside the table. The executor looks a
 * request up by id where nothing in hand holds its entry (a stimulus, then the loop's first move for
 * it; each of an admission grant's three deliveries; a native completion), and such lookups come in
 * runs for one request. A hit is one string comparison; a `Map` lookup by a string key hashes nothing
 * (the hash is cached in the string) but walks the bucket and calls V8's string comparison builtin.
 *
 * The last entry found sits in a small object of its own, replaced every FOUND_PER_RENEWAL misses: the
 * table lives as long as its server, in V8's old generation, and storing each young entry into it would
 * take the write barrier's slow path (as the scratch objects in serverBase.ts and the Run in
 * step/compile.ts avoid).
 */
class LastFound<E> {
  /** '' when nothing is kept (a string, never null: comparing a string with a field that was sometimes null compiled to V8's generic equality builtin). */
  id = '';
  entry: E | undefined = undefined;
}

/** Misses between two renewals of the last-found object (a power of two). */
const FOUND_PER_RENEWAL = 256;

export class RequestTable<E> {
  private readonly byId = new Map<string, E>();
  private last = new LastFound<E>();
  private misses = 0;

  get size(): number {
    return this.byId.size;
  }

  get(id: string): E | undefined {
    const last = this.last;
    // (`entry` says whether anything is kept: '' may be an id too.)
    if (id === last.id && last.entry !== undefined) return last.entry;
    const e = this.byId.get(id);
    if (e !== undefined) {
      const into = (++this.misses & (FOUND_PER_RENEWAL - 1)) === 0 ? (this.last = new LastFound<E>()) : last;
      into.id = id;
      into.entry = e;
    }
    return e;
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  set(id: string, entry: E): void {
    this.byId.set(id, entry);
    // A new entry under the id last found replaces what was kept for it.
    if (id === this.last.id) this.last.entry = entry;
  }

  delete(id: string): boolean {
    const last = this.last;
    if (id === last.id) {
      last.id = '';
      last.entry = undefined;
    }
    return this.byId.delete(id);
  }

  keys(): IterableIterator<string> {
    return this.byId.keys();
  }
}
