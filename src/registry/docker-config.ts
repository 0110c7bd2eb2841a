import { InvalidInputError } from "../errors.js";

/** A username and password for a registry (Basic auth, or the credentials sent to its token endpoint). */
export interface BasicCredentials {
  username: string;
  password: string;
}

const DOCKER_HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/**
 * The host[:port] a `.docker/config.json` key names: keys may be bare hosts (`ghcr.io`), URLs
 * (`https://index.docker.io/v1/`) or host/path. Docker Hub's aliases all become `docker.io`. Lowercased.
 */
export function normalizeRegistryHost(key: string): string {
  const host = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]?.toLowerCase() ?? "";
  return DOCKER_HUB_ALIASES.has(host) ? "docker.io" : host;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function decodeAuth(auth: string, host: string): BasicCredentials {
  const decoded = Buffer.from(auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) {
    // Never echo the value: it is a secret.
    throw new InvalidInputError(`the dockerconfigjson "auth" for ${host} is not base64 of "username:password"`);
  }
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Reads the credentials for `host` from a dockerconfigjson document (the `.dockerconfigjson` key of a
 * `kubernetes.io/dockerconfigjson` Secret, or `~/.docker/config.json`): `auths[host].auth` (base64 of
 * `username:password`) or `auths[host].username`/`password`. Keys are matched after normalisation (URL
 * forms and Docker Hub aliases). The legacy `.dockercfg` form (host keys at the top level) is accepted.
 * `credsStore`/`credHelpers` and `identitytoken` are not consulted.
 *
 * @param json the document, as text or already parsed.
 * @returns the credentials, or null when the document has none for `host`.
 * @throws InvalidInputError when the document is not JSON or the entry for `host` is malformed (the message
 *   never contains the secret).
 */
export function parseDockerConfigJson(json: string | unknown, host: string): BasicCredentials | null {
  let doc: unknown = json;
  if (typeof json === "string") {
    try {
      doc = JSON.parse(json);
    } catch (error) {
      throw new InvalidInputError("the dockerconfigjson is not valid JSON", { cause: error });
    }
  }
  if (!isObject(doc)) throw new InvalidInputError("the dockerconfigjson is not a JSON object");
  const auths = isObject(doc.auths) ? doc.auths : doc;
  const wanted = normalizeRegistryHost(host);
  const key = Object.keys(auths).find((k) => normalizeRegistryHost(k) === wanted);
  if (key === undefined) return null;
  const entry = auths[key];
  if (!isObject(entry)) throw new InvalidInputError(`the dockerconfigjson entry for ${key} is not an object`);
  if (typeof entry.username === "string" && typeof entry.password === "string" && entry.username !== "") {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth === "string" && entry.auth !== "") return decodeAuth(entry.auth, key);
  return null;
}
