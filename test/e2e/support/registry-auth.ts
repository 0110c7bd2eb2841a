// The local cluster's htpasswd registry (test/cluster/up), for the tests that push with credentials and then
// check the password leaked nowhere (test/e2e/build/push.test.ts, test/e2e/faults/credentials.test.ts).
import type { KubernetesEngineOptions } from "../../../src/index.js";
import { env } from "./cluster-env.js";

/** Where the htpasswd registry is and who may push to it. */
export interface AuthRegistry {
  /** The host images are named and pulled by (KCE_AUTH_REGISTRY). */
  host: string;
  /** The host builder pods push to (KCE_AUTH_REGISTRY_PUSH; the pull host when unset). */
  pushHost: string;
  user: string;
  password: string;
}

/** The auth registry of the running cluster; throws when its settings are missing. */
export function authRegistry(): AuthRegistry {
  const host = env("KCE_AUTH_REGISTRY");
  return { host, pushHost: process.env.KCE_AUTH_REGISTRY_PUSH ?? host, user: env("KCE_AUTH_USER"), password: env("KCE_AUTH_PASSWORD") };
}

/** Engine options that push to the auth registry (plain http) as its user, with `password` (a wrong one, too). */
export function pushWith(registry: AuthRegistry, password: string): KubernetesEngineOptions {
  return {
    insecureRegistries: [registry.pushHost],
    registryCredentials: { registry: registry.pushHost, username: registry.user, password },
  };
}

/** `user:password` in base64: how a password stands in a docker config's `auth` and in Basic auth headers. */
export function basicAuth(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`).toString("base64");
}

/** The names of the `haystacks` (name → text) that contain any of `needles`: where a credential leaked. */
export function leaksIn(haystacks: Record<string, string>, needles: readonly string[]): string[] {
  return Object.entries(haystacks)
    .filter(([, text]) => needles.some((needle) => text.includes(needle)))
    .map(([where]) => where);
}
