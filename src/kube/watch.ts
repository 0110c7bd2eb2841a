/**
 * THE watch: list + watch of a label/field-selected collection that survives disconnects, API server restarts,
 * expired resourceVersions (410) and silent stalls, and yields typed events. Every wait in the engine is
 * {@link waitFor}: "watch until a predicate holds, or the deadline / signal". No polling.
 */
import type { IncomingMessage } from "node:http";
import { CancelledError, DeadlineExceededError, KubernetesApiError } from "../errors.js";
import { isTransient, statusCodeOf, statusOf, type StatusBody } from "./api-errors.js";
import { abortableDelay, backoffDelay, type BackoffOptions, type DelayFn } from "./backoff.js";
import { throwIfAborted, type KubeClient } from "./client.js";
import { LineSplitter } from "./lines.js";

/** The fields of a Kubernetes object the watch reads. */
export interface KubeObject {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

/** What the watch yields. */
export type WatchEvent<T> =
  | {
      type: "ADDED" | "MODIFIED" | "DELETED";
      object: T;
      /** True for a DELETED made up after a relist: the object vanished while the watch was down. */
      synthetic?: boolean;
    }
  | {
      /** The complete current state, after the first list and after every relist (e.g. on 410 Gone). */
      type: "relisted";
      objects: T[];
    };

/** A source of watch events (a {@link ResourceWatch}, or a fake in tests). */
export interface Watchable<T> {
  /** A fresh event stream; it ends only by `signal` (CancelledError) or a typed error. */
  events(signal?: AbortSignal): AsyncIterable<WatchEvent<T>>;
}

/** Which collection to watch. */
export interface CollectionRef {
  /** Plural resource name, for messages: "pods", "jobs". */
  resource: string;
  /** The collection's path, e.g. `/api/v1/namespaces/ns/pods`. */
  path: string;
}

/** The pods of a namespace. */
export function podsCollection(namespace: string): CollectionRef {
  return { resource: "pods", path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods` };
}

/** The Jobs of a namespace. */
export function jobsCollection(namespace: string): CollectionRef {
  return { resource: "jobs", path: `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs` };
}

/** Options of {@link ResourceWatch}. */
export interface WatchOptions {
  labelSelector?: string;
  /** e.g. `metadata.name=my-pod`. */
  fieldSelector?: string;
  /** Re-watch when nothing (not even a BOOKMARK) arrived for this long, ms (default 90 000). */
  idleTimeoutMs?: number;
  /** Server-side timeout of one watch request, s (default 300); the watch then simply resumes. */
  serverTimeoutSeconds?: number;
  /** Give up with KubernetesApiError after failing to reach the server for this long, ms (default 60 000). */
  maxOutageMs?: number;
  backoff?: BackoffOptions;
  /** Injectable for tests. */
  delay?: DelayFn;
  /** Injectable clock, ms. */
  now?: () => number;
}

interface ListDoc<T> {
  metadata?: { resourceVersion?: string };
  items?: T[];
}

interface RawEvent<T> {
  type?: string;
  object?: T & StatusBody;
}

/** Thrown inside the loop when the stream went silent. */
class IdleTimeoutError extends Error {}

/** Thrown inside the loop when the resourceVersion expired. */
class GoneError extends Error {}

/**
 * The server has not caught up with our resourceVersion (it was restarted, or restored from an older etcd):
 * like 410, the cure is a fresh list (client-go's reflector does the same).
 */
function isTooLargeResourceVersion(status: StatusBody | null): boolean {
  if (status === null) return false;
  const causes = status.details?.causes ?? [];
  return causes.some((c) => c.reason === "ResourceVersionTooLarge") || /too large resource version/i.test(status.message ?? "");
}

function keyOf(obj: KubeObject): string {
  return obj.metadata?.uid ?? `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

/** Parses the newline-delimited JSON of a watch response; errors on a silent stream after `idleMs`. */
async function* readWatchEvents<T>(res: IncomingMessage, idleMs: number): AsyncGenerator<RawEvent<T>> {
  const splitter = new LineSplitter();
  let timer = setTimeout(() => res.destroy(new IdleTimeoutError()), idleMs);
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      clearTimeout(timer);
      timer = setTimeout(() => res.destroy(new IdleTimeoutError()), idleMs);
      for (const line of splitter.push(chunk)) {
        if (line.trim() === "") continue;
        yield JSON.parse(line) as RawEvent<T>;
      }
    }
  } finally {
    clearTimeout(timer);
    res.destroy();
  }
}

/**
 * List + watch of one collection. `events()` first yields `relisted` with the current objects, then
 * ADDED/MODIFIED/DELETED as they happen. It keeps the resourceVersion across reconnects (capped backoff),
 * relists on 410 Gone (yielding synthetic DELETEDs for objects that vanished meanwhile, then `relisted`),
 * requests bookmarks and re-watches after `idleTimeoutMs` of silence.
 */
export class ResourceWatch<T extends KubeObject> implements Watchable<T> {
  private readonly client: KubeClient;
  private readonly collection: CollectionRef;
  private readonly options: WatchOptions;

  constructor(client: KubeClient, collection: CollectionRef, options: WatchOptions = {}) {
    this.client = client;
    this.collection = collection;
    this.options = options;
  }

  /**
   * @throws CancelledError when `signal` aborts; KubernetesApiError for a non-transient failure (forbidden,
   *   missing namespace) or when the server stayed unreachable for `maxOutageMs`.
   */
  async *events(signal?: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const now = this.options.now ?? Date.now;
    const delay = this.options.delay ?? abortableDelay;
    const maxOutageMs = this.options.maxOutageMs ?? 60_000;
    const known = new Map<string, T>();
    const state = { rv: null as string | null };
    let attempt = 0;
    let outageStart: number | null = null;
    for (;;) {
      throwIfAborted(signal, `watch of ${this.collection.resource}`);
      try {
        if (state.rv === null) yield* this.relist(known, state, signal);
        const res = await this.openWatch(state.rv ?? "", signal);
        attempt = 0;
        outageStart = null;
        yield* this.stream(res, known, state, signal);
      } catch (err) {
        if (signal?.aborted) throw new CancelledError(`watch of ${this.collection.resource} cancelled`, { cause: err });
        if (err instanceof GoneError || statusCodeOf(err) === 410 || isTooLargeResourceVersion(statusOf(err))) {
          state.rv = null;
          continue;
        }
        if (!(err instanceof IdleTimeoutError) && !isTransient(err)) throw err;
        outageStart ??= now();
        if (now() - outageStart > maxOutageMs) throw this.outageError(err, now() - outageStart);
        await delay(backoffDelay(attempt++, this.options.backoff), signal);
      }
    }
  }

  private query(): Record<string, string | undefined> {
    return { labelSelector: this.options.labelSelector, fieldSelector: this.options.fieldSelector };
  }

  private async *relist(known: Map<string, T>, state: { rv: string | null }, signal?: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const list = await this.client.getJson<ListDoc<T>>({
      verb: "list",
      resource: this.collection.resource,
      path: this.collection.path,
      query: this.query(),
      ...(signal ? { signal } : {}),
    });
    const items = list.items ?? [];
    const present = new Set(items.map(keyOf));
    const vanished = [...known.entries()].filter(([k]) => !present.has(k)).map(([, v]) => v);
    known.clear();
    for (const item of items) known.set(keyOf(item), item);
    state.rv = list.metadata?.resourceVersion ?? "";
    for (const object of vanished) yield { type: "DELETED", object, synthetic: true };
    yield { type: "relisted", objects: items };
  }

  private openWatch(rv: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const timeout = this.options.serverTimeoutSeconds ?? 300;
    return this.client.openStream({
      verb: "watch",
      resource: this.collection.resource,
      path: this.collection.path,
      query: {
        ...this.query(),
        watch: "true",
        allowWatchBookmarks: "true",
        resourceVersion: rv,
        // Spread reconnects of many watches a little.
        timeoutSeconds: String(timeout + Math.floor(Math.random() * Math.max(1, timeout / 10))),
      },
      ...(signal ? { signal } : {}),
    });
  }

  private async *stream(
    res: IncomingMessage,
    known: Map<string, T>,
    state: { rv: string | null },
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>> {
    const onAbort = (): void => void res.destroy(new CancelledError("watch cancelled"));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const ev of readWatchEvents<T>(res, this.options.idleTimeoutMs ?? 90_000)) {
        const obj = ev.object;
        if (obj === undefined) continue;
        if (ev.type === "ERROR") {
          if (obj.code === 410 || isTooLargeResourceVersion(obj)) throw new GoneError(obj.message ?? "resourceVersion expired");
          throw new KubernetesApiError(`watch of ${this.collection.resource} failed: ${obj.message ?? "unknown error"}`, {
            verb: "watch",
            resource: this.collection.resource,
            statusCode: obj.code ?? 500,
            reason: obj.reason ?? null,
          });
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv !== undefined) state.rv = rv;
        if (ev.type === "BOOKMARK") continue;
        if (ev.type === "ADDED" || ev.type === "MODIFIED") known.set(keyOf(obj), obj);
        else if (ev.type === "DELETED") known.delete(keyOf(obj));
        else continue;
        yield { type: ev.type, object: obj };
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      res.destroy();
    }
  }

  private outageError(err: unknown, elapsedMs: number): KubernetesApiError {
    const seconds = Math.round(elapsedMs / 1000);
    return new KubernetesApiError(
      `lost the watch on ${this.collection.resource} in namespace "${this.client.namespace}": the API server at ` +
        `${this.client.server} could not be reached for ${seconds} s (last error: ${err instanceof Error ? err.message : String(err)})`,
      { verb: "watch", resource: this.collection.resource, statusCode: null, reason: "Unreachable", cause: err },
    );
  }
}

/** How a {@link waitFor} ended. */
export type WaitOutcome<T> =
  | { kind: "matched"; object: T }
  /** The object was deleted (`object` is its last state), or was absent from a list (`object` null). */
  | { kind: "deleted"; object: T | null };

/** Options of {@link waitFor}. */
export interface WaitOptions {
  signal?: AbortSignal;
  /** Deadline, ms; DeadlineExceededError after it. None by default. */
  timeoutMs?: number;
  /** Only events for the object of this name count (for watches of more than one object). */
  name?: string;
  /** A list without the object (by `name`, or empty) ends the wait as `deleted` with a null object. */
  absentIsDeleted?: boolean;
  /** What is waited for, for the timeout message, e.g. `pod "x" to start`. */
  description?: string;
}

/**
 * Watches until `predicate` holds for an object (→ `matched`) or the object is deleted (→ `deleted`).
 * @throws DeadlineExceededError after `timeoutMs`; CancelledError when `signal` aborts; the watch's errors.
 */
export async function waitFor<T extends KubeObject>(
  watch: Watchable<T>,
  predicate: (object: T) => boolean,
  options: WaitOptions = {},
): Promise<WaitOutcome<T>> {
  const ctrl = new AbortController();
  const what = options.description ?? "the condition";
  const onAbort = (): void => ctrl.abort(new CancelledError(`waiting for ${what} cancelled`));
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  let timedOut = false;
  const timer =
    options.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          ctrl.abort();
        }, options.timeoutMs)
      : undefined;
  const mine = (o: T): boolean => options.name === undefined || o.metadata?.name === options.name;
  try {
    for await (const ev of watch.events(ctrl.signal)) {
      if (ev.type === "relisted") {
        const objs = ev.objects.filter(mine);
        const hit = objs.find(predicate);
        if (hit !== undefined) return { kind: "matched", object: hit };
        if (objs.length === 0 && options.absentIsDeleted) return { kind: "deleted", object: null };
      } else if (mine(ev.object)) {
        if (ev.type === "DELETED") return { kind: "deleted", object: ev.object };
        if (predicate(ev.object)) return { kind: "matched", object: ev.object };
      }
    }
    throw new CancelledError(`the watch ended while waiting for ${what}`);
  } catch (err) {
    if (timedOut) throw new DeadlineExceededError(`timed out after ${options.timeoutMs} ms waiting for ${what}`, { cause: err });
    if (options.signal?.aborted) throw new CancelledError(`waiting for ${what} cancelled`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    ctrl.abort();
  }
}
