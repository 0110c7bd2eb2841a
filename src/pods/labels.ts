/**
 * The labels and annotations on every object we create, and the selectors that find them again (for the one
 * watch, for `remove`, for `gc`). Labels identify; annotations carry what does not fit a label value.
 */
import { InvalidInputError } from "../errors.js";

/** Value of {@link LABEL_MANAGED_BY} on everything we create. */
export const MANAGED_BY = "kube-container-engine";
/** Standard label: who manages the object. */
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
/** The engine instance that created the object (several engines may share a namespace). */
export const LABEL_INSTANCE = "kube-container-engine/instance";
/**
 * `builder`, `container`, `runner` (a build service's repo2docker Job), `spare` (a warm runner waiting for a
 * build) or `pool` (a long-running BuildKit daemon of a warm pool).
 */
export const LABEL_ROLE = "kube-container-engine/role";

/** RFC 3339 time the client created the object (gc reads it; the server's creationTimestamp is the fallback). */
export const ANNOTATION_CREATED_AT = "kube-container-engine/created-at";
/** The image reference the object runs or builds, as the user named it (labels cannot hold `/` and `:`). */
export const ANNOTATION_IMAGE = "kube-container-engine/image";
/** "true" when the run asked for `remove`: delete the pod once it exited (gc may do it for a dead client). */
export const ANNOTATION_REMOVE = "kube-container-engine/remove";

/** What an object is for. */
export type Role = "builder" | "container" | "runner" | "spare" | "pool";
const ROLES: readonly Role[] = ["builder", "container", "runner", "spare", "pool"];

const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const LABEL_NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

/** True when `value` is a valid label value (≤ 63 characters, alphanumeric at both ends, `-_.` inside). */
export function isValidLabelValue(value: string): boolean {
  return LABEL_VALUE.test(value);
}

/** True when `key` is a valid label/annotation key: `[prefix/]name`, prefix a DNS subdomain. */
export function isValidLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? null : key.slice(0, slash);
  return LABEL_NAME.test(name) && (prefix === null || DNS_SUBDOMAIN.test(prefix));
}

/** Inputs of {@link engineLabels}. */
export interface LabelInput {
  /** The engine instance id; must be a valid label value. */
  instance: string;
  role: Role;
  /** Extra labels from the engine configuration; they cannot override ours. */
  extra?: Record<string, string>;
}

/**
 * The labels of an object we create.
 * @throws InvalidInputError when the instance id or an extra label is not a valid label, or an extra label
 *   tries to set one of our keys
 */
export function engineLabels(input: LabelInput): Record<string, string> {
  if (!isValidLabelValue(input.instance) || input.instance === "") {
    throw new InvalidInputError(
      `engine instance id ${JSON.stringify(input.instance)} is not a valid label value: use at most 63 letters, ` +
        "digits, '-', '_' or '.', starting and ending with a letter or digit",
    );
  }
  const ours = { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_INSTANCE]: input.instance, [LABEL_ROLE]: input.role };
  for (const [key, value] of Object.entries(input.extra ?? {})) {
    if (key in ours) throw new InvalidInputError(`label ${key} is set by the engine and cannot be configured`);
    if (!isValidLabelKey(key)) throw new InvalidInputError(`label key ${JSON.stringify(key)} is not valid`);
    if (!isValidLabelValue(value)) {
      throw new InvalidInputError(`label ${key}=${JSON.stringify(value)}: the value is not a valid label value`);
    }
  }
  return { ...input.extra, ...ours };
}

/** Inputs of {@link engineAnnotations}. */
export interface AnnotationInput {
  /** When the client created the object (the caller's clock). */
  createdAt: Date;
  /** The image reference, as the user named it. */
  image?: string;
  /** The run's `remove` option. */
  remove?: boolean;
}

/** The annotations of an object we create. Never put credentials here: annotations are readable by anyone who can list pods. */
export function engineAnnotations(input: AnnotationInput): Record<string, string> {
  const annotations: Record<string, string> = { [ANNOTATION_CREATED_AT]: input.createdAt.toISOString() };
  if (input.image !== undefined) annotations[ANNOTATION_IMAGE] = input.image;
  if (input.remove !== undefined) annotations[ANNOTATION_REMOVE] = String(input.remove);
  return annotations;
}

/**
 * A label selector (`a=b,c=d`) for our objects; narrower with an instance and/or a role.
 * Without an instance it matches every engine's objects (for an all-instances `gc`).
 * @throws InvalidInputError when the instance id is not a valid label value
 */
export function engineSelector(filter: { instance?: string; role?: Role } = {}): string {
  if (filter.instance !== undefined && (filter.instance === "" || !isValidLabelValue(filter.instance))) {
    throw new InvalidInputError(`engine instance id ${JSON.stringify(filter.instance)} is not a valid label value`);
  }
  const parts = [`${LABEL_MANAGED_BY}=${MANAGED_BY}`];
  if (filter.instance !== undefined) parts.push(`${LABEL_INSTANCE}=${filter.instance}`);
  if (filter.role !== undefined) parts.push(`${LABEL_ROLE}=${filter.role}`);
  return parts.join(",");
}

/** A label selector for exactly these labels (`k=v,…`, sorted by key so it is stable). */
export function selectorFromLabels(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`)
    .join(",");
}

/** Metadata shape shared by every Kubernetes object (enough for the helpers below). */
export interface ObjectMetaLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: Date | string };
}

/** True when the object carries our managed-by label (and the instance's, when given). */
export function isManagedByUs(object: ObjectMetaLike, instance?: string): boolean {
  const labels = object.metadata?.labels ?? {};
  return labels[LABEL_MANAGED_BY] === MANAGED_BY && (instance === undefined || labels[LABEL_INSTANCE] === instance);
}

/** The object's role label; null when absent or unknown. */
export function roleOf(object: ObjectMetaLike): Role | null {
  const role = object.metadata?.labels?.[LABEL_ROLE];
  return ROLES.includes(role as Role) ? (role as Role) : null;
}

/**
 * When the object was created: our annotation, else the server's `creationTimestamp`. Null when neither parses.
 */
export function createdAtOf(object: ObjectMetaLike): Date | null {
  const candidates = [object.metadata?.annotations?.[ANNOTATION_CREATED_AT], object.metadata?.creationTimestamp];
  for (const candidate of candidates) {
    if (candidate === undefined) continue;
    const ms = candidate instanceof Date ? candidate.getTime() : Date.parse(candidate);
    if (!Number.isNaN(ms)) return new Date(ms);
  }
  return null;
}
