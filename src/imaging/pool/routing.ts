/**
 * Which daemon a build goes to: rendezvous (highest-random-weight) hashing of the build's identity — the image
 * name's repository, or the build service's repository — over the pool's slots. The same identity prefers the
 * same slot (its cache is there) whatever other daemons exist; a slot that is busy is skipped for the next in
 * its order. Pure.
 */
import { createHash } from "node:crypto";

/** The pool's slots in the order a build of `identity` tries them. */
export function slotOrder(identity: string, slots: number): number[] {
  const score = (slot: number): bigint => createHash("sha256").update(`${identity}\u0000${slot}`).digest().readBigUInt64BE(0);
  return Array.from({ length: slots }, (_, i) => i).sort((a, b) => {
    const d = score(b) - score(a);
    return d > 0n ? 1 : d < 0n ? -1 : a - b;
  });
}

/** The identity of a build for routing: its image's repository without the tag (a local path never counts). */
export function routingIdentity(repository: string): string {
  return repository.replace(/[:@][^/]*$/, "").toLowerCase();
}
