/**
 * How BuildKit runs (pure decision). Rootless BuildKit needs an image made for it (a non-root user with
 * /etc/subuid and /etc/subgid, rootlesskit, setuid newuidmap/newgidmap — upstream's `moby/buildkit:*-rootless`)
 * and a namespace that allows seccomp/AppArmor `Unconfined` (Pod Security `privileged`); no added capability when
 * newuidmap/newgidmap switch back to the caller's uid or carry file capabilities (see buildkit.ts). Privileged
 * BuildKit gives the Dockerfile's `RUN` steps root on the node.
 *
 * The decision (documented here because it is a security trade-off, reliability.md / issue 8: "the privileged
 * fallback only with an explicit opt-in and a warning"):
 * - an explicit `rootless` or `privileged` always wins; `privileged` is announced with a warning;
 * - `auto` picks rootless when the builder image is a rootless image (its config runs as a non-root user, or
 *   its tag says `rootless`), and otherwise **fails** before anything is created, naming both ways out (a
 *   rootless image, or the explicit opt-in `buildkitMode: "privileged"`). It never silently falls back to
 *   privileged.
 */
import type { BuildkitMode } from "../config.js";
import { InvalidInputError } from "../errors.js";
import { parseImageReference } from "../image.js";

/** What is known about the builder image. */
export interface BuildkitImageFacts {
  /** The image reference, as configured. */
  image: string;
  /**
   * The image config's `User`: "" or "0"/"root" (…:group) for root; null when the config could not be read
   * (e.g. an image outside the engine's registry).
   */
  user: string | null;
}

/** The chosen mode, why, and a warning to print when it is privileged. */
export interface BuildkitModeChoice {
  mode: "privileged" | "rootless";
  /** One line for the engine's log, e.g. `BuildKit mode rootless (auto): …`. */
  reason: string;
  /** Printed through the engine's log as well; null when there is nothing to warn about. */
  warning: string | null;
}

const PRIVILEGED_WARNING =
  "warning: BuildKit runs privileged: the Dockerfile's RUN steps have root on the node. Prefer a rootless " +
  "BuildKit image (buildkitMode \"auto\" or \"rootless\") where the cluster allows it.";

/** Whether the image config's user is root ("", "0", "root", optionally with ":group"). */
function isRootUser(user: string): boolean {
  const name = user.split(":")[0] ?? "";
  return name === "" || name === "0" || name === "root";
}

/** Why the image looks rootless, or null when it does not. */
export function rootlessEvidence(facts: BuildkitImageFacts): string | null {
  if (facts.user !== null && !isRootUser(facts.user)) return `its image ${facts.image} runs as user ${facts.user}`;
  let tag = "";
  try {
    tag = parseImageReference(facts.image).tag ?? "";
  } catch {
    tag = ""; // a malformed image name fails later, at the Job's creation, with the API's message
  }
  if (/rootless/i.test(tag) && facts.user === null) return `its image tag ${JSON.stringify(tag)} names a rootless image`;
  return null;
}

/**
 * Chooses the mode; see the module comment.
 * @throws InvalidInputError for `auto` with an image that is not rootless (nothing has been created).
 */
export function chooseBuildkitMode(requested: BuildkitMode, facts: BuildkitImageFacts): BuildkitModeChoice {
  if (requested === "privileged") {
    return { mode: "privileged", reason: "BuildKit mode privileged (explicit buildkitMode)", warning: PRIVILEGED_WARNING };
  }
  if (requested === "rootless") {
    return { mode: "rootless", reason: "BuildKit mode rootless (explicit buildkitMode)", warning: null };
  }
  const evidence = rootlessEvidence(facts);
  if (evidence) return { mode: "rootless", reason: `BuildKit mode rootless (auto): ${evidence}`, warning: null };
  const what = facts.user === null ? "could not be read as a rootless image" : "runs as root";
  throw new InvalidInputError(
    `buildkitMode "auto" found no way to run BuildKit rootless: the builder image ${facts.image} ${what}. ` +
      "Either use a rootless BuildKit image (a non-root user with /etc/subuid and /etc/subgid, rootlesskit, " +
      "newuidmap/newgidmap, e.g. moby/buildkit:<version>-rootless; the namespace must allow seccomp " +
      "Unconfined), or opt in to privileged BuildKit explicitly: buildkitMode \"privileged\" " +
      "(env KCE_BUILDKIT_MODE=privileged).",
  );
}
