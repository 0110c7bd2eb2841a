/**
 * The contract's Container over one pod. Status is a snapshot (`reload()`); every wait is the one watch
 * (`waitFor`); logs come from the one log follower. Kubernetes has no signal API, so `kill`/`stop` delete the
 * pod with a grace period — after arranging to keep its final state and its log, which the contract promises
 * stay readable.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Container, ContainerStatus, LogOptions } from "./contract.js";
import { ContainerNotFoundError, DeadlineExceededError, type ContainerEngineError } from "./errors.js";
import { isStatus, type KubeApi } from "./kube/api.js";
import { formatLogLine, type LogLine } from "./kube/logs.js";
import { compareTimestamps } from "./kube/lines.js";
import type { PortForward, PortMapping } from "./kube/port-forward.js";
import { waitFor } from "./kube/watch.js";
import { containerErrorOf } from "./pods/container-error.js";
import { RUN_CONTAINER_NAME } from "./pods/run-pod.js";
import { containerStateOf, type PodState, type StatusOptions } from "./pods/status.js";

/**
 * What a {@link PodContainer} needs; the engine supplies it.
 * @internal
 */
export interface PodContainerInit {
  /** The cluster, in the pod's namespace. */
  api: KubeApi;
  /** The pod as created or last seen. */
  pod: V1Pod;
  /** Grace periods for image pulls and scheduling, seconds. */
  graces: Pick<StatusOptions, "pullGraceSeconds" | "unschedulableGraceSeconds">;
  /** Delete the pod once it has exited (`run(…, {remove: true})`). */
  removeOnExit?: boolean;
  /** Warnings that must not be lost but must not throw (background cleanup). */
  warn: (message: string) => void;
  /** Injectable clock. */
  now?: () => Date;
}

/** Most log bytes kept in memory for a killed or stopped container (the tail is kept). */
const RETAINED_LOG_BYTES = 16 * 1024 * 1024;
/** While the pod waits (pull, scheduling), re-evaluate grace periods this often even without events. */
const GRACE_RECHECK_MS = 5_000;

/**
 * What {@link PodContainer.start} needs besides the {@link PodContainerInit}'s pod: the pod to create.
 * @internal
 */
export interface StartContainer extends Omit<PodContainerInit, "pod"> {
  /** The run pod (see pods/run-pod.ts). */
  spec: V1Pod;
  /** Container ports to forward to the local machine once the container runs. */
  forwards: PortMapping[];
  /** Aborts the start: the pod is deleted and `start` throws CancelledError. */
  signal?: AbortSignal;
}

/**
 * The contract's Container, backed by one pod. Exported for `instanceof` and its type: containers come from
 * `engine.run()`. Its constructor is private and `start()` internal (they take the
 * engine's cluster seam and client-node pod objects): the published declarations show neither.
 */
export class PodContainer implements Container {
  /**
   * Creates the pod and resolves once its container started (its ports forwarded) or once the cluster gave
   * up starting it (`status` exited, `reason` says why). Whatever fails after the pod was created deletes it
   * before the error is rethrown, so a failed start leaves nothing behind.
   * @internal
   */
  static async start(options: StartContainer): Promise<PodContainer> {
    const { spec, forwards, signal, ...init } = options;
    // Not abortable: once sent, the create may have happened; an abort is handled below, where the pod is deleted.
    const created = await init.api.pods.create(spec);
    const container = new PodContainer({ ...init, pod: created });
    try {
      await container.until((s) => s.status !== "created", signal);
      if (forwards.length > 0 && container.status === "running") {
        container.attachForward(await init.api.forwardPorts({ pod: container.id, ports: forwards, logger: { warn: init.warn } }));
      } else if (init.removeOnExit) {
        container.watchInBackground();
      }
    } catch (err) {
      await container.remove().catch((cleanupErr: unknown) => init.warn(`cleanup of ${container.id}: ${String(cleanupErr)}`));
      throw err;
    }
    return container;
  }

  readonly id: string;
  private readonly api: KubeApi;
  private readonly init: PodContainerInit;
  private pod: V1Pod;
  private gone = false;
  private removed = false;
  /** kill/stop/remove was called: a deletion is ours, not a fault. */
  private endedByUs = false;
  private state: PodState;
  /** The log captured before the pod went away (kill/stop); null while the kubelet still has it. */
  private retainedLog: LogLine[] | null = null;
  private forward: PortForward | null = null;
  private boundPorts: Record<string, { host: string; port: number }> | undefined;
  private readonly background = new AbortController();

  private constructor(init: PodContainerInit) {
    this.init = init;
    this.api = init.api;
    this.pod = init.pod;
    this.id = init.pod.metadata?.name ?? "";
    this.state = this.evaluate(this.pod);
  }

  get status(): ContainerStatus {
    return this.state.status;
  }

  get exitcode(): number | null {
    return this.state.status === "exited" ? this.state.exitCode : 0;
  }

  /** Why the container ended when it did not simply exit, or what it waits for; null otherwise. */
  get reason(): string | null {
    return this.state.reason ?? this.state.waiting;
  }

  /**
   * Why the cluster ended the container or never started it, as a typed error: ImagePullError,
   * UnschedulableError, DeadlineExceededError (`timeouts.runSeconds`), ContainerNotFoundError (deleted or
   * evicted from outside). Null while it runs or waits, and after it exited by itself (see `exitcode`).
   */
  get error(): ContainerEngineError | null {
    const image = this.pod.spec?.containers?.find((c) => c.name === RUN_CONTAINER_NAME)?.image ?? "";
    return containerErrorOf(this.state, { id: this.id, image, endedByUs: this.endedByUs });
  }

  /** Where each container port was forwarded (kept after the forward ended, for the record). */
  get ports(): Record<string, { host: string; port: number }> | undefined {
    return this.boundPorts;
  }

  /** The full state snapshot (status, exit code, failure kind, …). */
  get podState(): PodState {
    return this.state;
  }

  async reload(): Promise<void> {
    this.assertNotRemoved();
    if (this.gone) return;
    const pod = await this.api.pods.get(this.id);
    if (pod) this.observe(pod);
    else this.observeGone(null);
  }

  async logs(options: LogOptions = {}): Promise<string> {
    const lines = await this.collectLog(options.since);
    return lines.map((l) => formatLogLine(l, options.timestamps === true)).join("");
  }

  async *streamLogs(options: LogOptions = {}): AsyncIterable<string> {
    // A container that can never start (image pull failure, unschedulable) has no log to follow.
    if (!this.retainedLog && !this.gone && !this.removed) await this.until((s) => s.status !== "created");
    if (this.retainedLog || this.gone || this.removed || this.state.failure !== null) {
      yield* (await this.collectLog(options.since)).map((l) => formatLogLine(l, options.timestamps === true));
      return;
    }
    try {
      for await (const line of this.api.followLogs(this.logTarget(options.since))) {
        yield formatLogLine(line, options.timestamps === true);
      }
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError)) throw err;
    }
  }

  async kill(options: { signal?: string } = {}): Promise<void> {
    const signal = (options.signal ?? "KILL").toUpperCase().replace(/^SIG/, "");
    // SIGKILL has no grace; 1 s is the shortest grace that still lets the kubelet report the final state.
    await this.terminate(signal === "KILL" || signal === "9" ? 1 : 30);
  }

  async stop(options: { timeout?: number } = {}): Promise<void> {
    await this.terminate(Math.max(1, Math.round(options.timeout ?? 10)));
  }

  async wait(): Promise<{ exitCode: number }> {
    this.assertNotRemoved();
    await this.until((s) => s.terminal);
    return { exitCode: this.state.exitCode ?? 0 };
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    this.endedByUs = true;
    this.background.abort();
    await this.closeForward();
    if (!this.gone) await this.deletePod(0);
  }

  /** Starts forwarding; the forward ends when the container does. */
  private attachForward(forward: PortForward): void {
    this.forward = forward;
    this.boundPorts = Object.fromEntries(
      forward.ports.map((p) => [`${p.remotePort}/tcp`, { host: p.localAddress, port: p.localPort }]),
    );
    this.watchInBackground();
  }

  /**
   * Ends the port forward when the container exits and, with `removeOnExit`, deletes the pod — keeping its
   * final state and log first, so `wait()` and `logs()` still answer, as after Docker's auto-remove.
   */
  private watchInBackground(): void {
    if (this.background.signal.aborted) return;
    this.until((s) => s.terminal, this.background.signal)
      .then(async () => {
        await this.closeForward();
        if (!this.init.removeOnExit || this.removed) return;
        this.retainedLog ??= await this.collectLog(undefined);
        await this.deletePod(0);
        this.observeGone(null);
      })
      .catch((err: unknown) => {
        if (!this.background.signal.aborted) this.init.warn(`container ${this.id}: ${String(err)}`);
      });
  }

  /** Waits (by watch) until `predicate` holds for the state, re-checking grace periods while the pod waits. */
  private async until(predicate: (state: PodState) => boolean, signal?: AbortSignal): Promise<void> {
    const watch = this.api.pods.watch({ fieldSelector: `metadata.name=${this.id}` });
    while (!predicate(this.state) && !this.gone) {
      const waiting = this.state.status === "created";
      try {
        const outcome = await waitFor(watch, (pod) => predicate(this.evaluate(pod)), {
          name: this.id,
          absentIsDeleted: true,
          description: `container ${this.id}`,
          ...(signal ? { signal } : {}),
          ...(waiting ? { timeoutMs: GRACE_RECHECK_MS } : {}),
        });
        if (outcome.kind === "deleted") this.observeGone(outcome.object);
        else this.observe(outcome.object);
      } catch (err) {
        if (!(waiting && err instanceof DeadlineExceededError)) throw err;
        await this.reload();
      }
    }
  }

  private evaluate(pod: V1Pod, gone = false): PodState {
    return containerStateOf(pod, {
      now: (this.init.now ?? (() => new Date()))(),
      ...this.init.graces,
      containerName: RUN_CONTAINER_NAME,
      gone,
    });
  }

  private observe(pod: V1Pod): void {
    this.pod = pod;
    this.state = this.evaluate(pod);
  }

  private observeGone(lastSeen: V1Pod | null): void {
    if (lastSeen) this.pod = lastSeen;
    this.gone = true;
    this.state = this.evaluate(this.pod, true);
  }

  /** Deletes the pod with `graceSeconds`, keeping its log and final state. No-op once exited or gone. */
  private async terminate(graceSeconds: number): Promise<void> {
    this.assertNotRemoved();
    if (this.gone || this.state.terminal) return;
    this.endedByUs = true;
    const capture = this.captureLog();
    await this.deletePod(graceSeconds);
    await this.until((s) => s.terminal);
    this.retainedLog = await capture;
    await this.closeForward();
  }

  /**
   * Follows the whole log into memory (bounded) until the container ends; started before the delete so no
   * line is lost when the pod object goes away with its log.
   */
  private async captureLog(): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    let bytes = 0;
    try {
      for await (const line of this.api.followLogs({ ...this.logTarget(undefined), startTimeoutMs: 60_000 })) {
        lines.push(line);
        bytes += line.text.length + line.timestamp.length;
        while (bytes > RETAINED_LOG_BYTES && lines.length > 1) {
          const dropped = lines.shift();
          bytes -= (dropped?.text.length ?? 0) + (dropped?.timestamp.length ?? 0);
        }
      }
    } catch (err) {
      if (!(err instanceof ContainerNotFoundError)) this.init.warn(`container ${this.id}: log capture: ${String(err)}`);
    }
    return lines;
  }

  private async collectLog(since: string | undefined): Promise<LogLine[]> {
    const keep = (l: LogLine): boolean => since === undefined || compareTimestamps(l.timestamp, since) >= 0;
    if (this.retainedLog) return this.retainedLog.filter(keep);
    if (this.gone || this.removed) return [];
    try {
      return await this.api.readLogs(this.logTarget(since));
    } catch (err) {
      // 404: the pod is gone; 400: its container has not started yet. Either way there is no log to read.
      if (isStatus(err, 404) || isStatus(err, 400)) return [];
      throw err;
    }
  }

  private logTarget(since: string | undefined): { pod: string; container: string; sinceTime?: string } {
    return { pod: this.id, container: RUN_CONTAINER_NAME, ...(since ? { sinceTime: since } : {}) };
  }

  private async deletePod(gracePeriodSeconds: number): Promise<void> {
    await this.api.pods.deleteIfExists(this.id, { gracePeriodSeconds });
  }

  private async closeForward(): Promise<void> {
    const forward = this.forward;
    this.forward = null;
    await forward?.close();
  }

  private assertNotRemoved(): void {
    if (this.removed) throw new ContainerNotFoundError(`container ${this.id} was removed`);
  }
}
