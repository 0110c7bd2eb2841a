import { describe, expect, it } from "vitest";
import {
  ContainerNotFoundError,
  DeadlineExceededError,
  ImagePullError,
  UnschedulableError,
} from "../../../src/errors.js";
import { containerErrorOf } from "../../../src/pods/container-error.js";
import type { PodFailure, PodState } from "../../../src/pods/status.js";

const state = (failure: PodFailure | null, reason: string | null): PodState => ({
  status: "exited",
  exitCode: 125,
  reason,
  terminal: true,
  failure,
  deleted: failure === "deleted",
  waiting: null,
  terminationMessage: null,
});
const input = { id: "kce-run-x", image: "reg:5000/a:b", endedByUs: false };

describe("containerErrorOf", () => {
  it.each([
    ["image-pull", "ErrImagePull: not found", ImagePullError, /image reg:5000\/a:b could not be pulled \(ErrImagePull: not found\)/],
    ["unschedulable", "Unschedulable: 0/1 nodes are available", UnschedulableError, /no node can run it \(Unschedulable: 0\/1/],
    ["deadline", "DeadlineExceeded: too long", DeadlineExceededError, /timeouts\.runSeconds/],
    ["evicted", "Evicted: low memory", ContainerNotFoundError, /evicted by the cluster: Evicted: low memory/],
    ["deleted", "Deleted: the pod was deleted", ContainerNotFoundError, /Deleted: the pod was deleted/],
  ] as const)("%s → %s", (failure, reason, type, message) => {
    const error = containerErrorOf(state(failure, reason), input);
    expect(error).toBeInstanceOf(type);
    expect(error?.message).toMatch(message);
  });

  it("an image-pull error carries the image and the kubelet's reason", () => {
    expect(containerErrorOf(state("image-pull", "ImagePullBackOff: Back-off pulling: x"), input)).toMatchObject({
      image: "reg:5000/a:b",
      kubeletReason: "ImagePullBackOff",
    });
  });

  it("a container that exited because someone else deleted its pod is gone", () => {
    const deleted = { ...state("error", "Deleted: the pod was deleted; its container ended with code 143"), exitCode: 143, deleted: true };
    expect(containerErrorOf(deleted, input)?.message).toBe("container kce-run-x was deleted from outside (its process ended with code 143)");
    expect(containerErrorOf(deleted, input)).toBeInstanceOf(ContainerNotFoundError);
    expect(containerErrorOf(deleted, { ...input, endedByUs: true })).toBeNull();
  });

  it("is null for exits (any code, OOM too), while running, and for our own deletes", () => {
    expect(containerErrorOf(state("error", null), input)).toBeNull();
    expect(containerErrorOf(state("oom", "OOMKilled"), input)).toBeNull();
    expect(containerErrorOf(state(null, null), input)).toBeNull();
    expect(containerErrorOf(state("deleted", "Deleted: …"), { ...input, endedByUs: true })).toBeNull();
  });
});
