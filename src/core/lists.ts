/**
 * Short lists of objects that grow by one at a time (an actor's timers, a step's effects, a request's
 * actors), built so that V8 does no generic work on them.
 *
 * A list of up to three is a new literal of exactly its length, holding objects from the start. An
 * empty literal holds small integers, and the first push of an object changed its elements kind (the
 * generic push builtin, about 140 instructions); a push onto a full literal grew it to 17 slots or more
 * (V8's GrowFastSmiOrObjectElements, about 100). Most such lists stop at one to three entries.
 */

/**
 * `list` with `x` appended: a new list while it has fewer than four entries, else `list` itself, pushed
 * onto. The caller stores the result in place of `list` (null, undefined or a shared empty list stand
 * for no list yet: an empty one is never written); a reader who walks the list by index, reading it
 * anew at each step, sees what a push would have shown.
 */
export function appended<T>(list: T[] | null | undefined, x: T): T[] {
  if (list === null || list === undefined) return [x];
  switch (list.length) {
    case 0:
      return [x];
    case 1:
      return [list[0]!, x];
    case 2:
      return [list[0]!, list[1]!, x];
    default:
      list.push(x);
      return list;
  }
}
