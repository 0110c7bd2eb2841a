// What every e2e test takes from the local cluster: the settings test/cluster/up exports (also written to
// ~/.cache/kce/cluster.env), and fresh names, so that test files and reruns never collide.
import { randomBytes } from "node:crypto";

/** The value of the cluster setting `name`; throws with the fix when it is unset, instead of guessing a cluster. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run eval "$(test/cluster/up)", or source ~/.cache/kce/cluster.env`);
  return value;
}

/** The busybox image every test pod and test Dockerfile starts from (already on the node: no pull from outside). */
export function baseImage(): string {
  return env("KCE_BASE_IMAGE");
}

/** `prefix` plus six random hex digits: a namespace or tag no earlier run used. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString("hex")}`;
}
