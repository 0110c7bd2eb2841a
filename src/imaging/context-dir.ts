/**
 * A build-context directory → the list of entries Docker would send: `.dockerignore` applied with Docker's own
 * rules (@balena/dockerignore), the Dockerfile and `.dockerignore` always kept (as the Docker CLI does), special
 * files skipped. Only metadata is read here; contents are streamed later by the tar writer.
 */
import { accessSync, constants, lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join, posix } from "node:path";
import dockerignore from "@balena/dockerignore";
import { InvalidInputError } from "../errors.js";
import { normalizeEntries, normalizeMode, type ContextEntry } from "./tar-format.js";

/** Entries visited between two turns of the event loop while listing. */
const YIELD_EVERY = 500;

/** What a directory walk found. */
export interface DirectoryListing {
  entries: ContextEntry[];
  /** Skipped entries (sockets, FIFOs, devices), one message each. */
  warnings: string[];
}

/** Parses ignore-file text the way Docker's `ignorefile.ReadAll` does (comments, trimming, Clean, leading "/"). */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if (raw.startsWith("#")) continue;
    let pattern = raw.trim();
    if (pattern === "") continue;
    const invert = pattern.startsWith("!");
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = posix.normalize(pattern);
      if (pattern.length > 1 && pattern.endsWith("/")) pattern = pattern.slice(0, -1);
      if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  }
  return patterns;
}

async function readIgnoreFile(root: string, dockerfile: string): Promise<string[]> {
  // BuildKit-era Docker prefers "<Dockerfile>.dockerignore" next to the Dockerfile over the root one.
  for (const candidate of [`${dockerfile}.dockerignore`, ".dockerignore"]) {
    try {
      return parseDockerignore(await readFile(join(root, candidate), "utf8"));
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new InvalidInputError(`cannot read ${candidate} in the build context: ${String(cause)}`, { cause });
    }
  }
  return [];
}

/** Throws `InvalidInputError` unless `root` is a readable directory holding the (regular-file) Dockerfile. */
async function checkRoot(root: string, dockerfile: string): Promise<void> {
  const rootStat = await stat(root).catch((cause: unknown) => {
    throw new InvalidInputError(`build context directory ${JSON.stringify(root)} does not exist or is unreadable`, {
      cause,
    });
  });
  if (!rootStat.isDirectory()) {
    throw new InvalidInputError(`build context ${JSON.stringify(root)} is not a directory`);
  }
  const df = await stat(join(root, dockerfile)).catch((cause: unknown) => {
    throw new InvalidInputError(`Dockerfile ${JSON.stringify(dockerfile)} not found in the build context ${root}`, {
      cause,
    });
  });
  if (!df.isFile()) throw new InvalidInputError(`Dockerfile ${JSON.stringify(dockerfile)} is not a regular file`);
}

/**
 * Lists `root` for a build with `dockerfile` (relative POSIX path, already validated). Sorted, with every
 * parent directory present. Throws `InvalidInputError` for a missing directory or Dockerfile and for
 * unreadable files, before anything is streamed.
 */
export async function listDirectory(root: string, dockerfile: string): Promise<DirectoryListing> {
  await checkRoot(root, dockerfile);
  const patterns = [...(await readIgnoreFile(root, dockerfile))];
  const ig = dockerignore.default().add(patterns);
  // As the Docker CLI does (TrimBuildFilesFromExcludes): the Dockerfile and .dockerignore are always sent.
  for (const keep of [".dockerignore", dockerfile]) {
    if (ig.ignores(keep)) patterns.push(`!${keep}`);
  }
  const matcher = dockerignore.default().add(patterns);
  const exceptions = patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1));
  const entries: ContextEntry[] = [];
  const warnings: string[] = [];
  const source = { dir: root };

  // Synchronous calls: through the thread pool, two round trips per file made listing 50k files take
  // 3.6 s instead of 0.25 s (bench P2). The walk gives the event loop a turn every few hundred entries.
  let sinceYield = 0;
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? root : join(root, rel);
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (cause) {
      throw new InvalidInputError(`cannot read directory ${JSON.stringify(rel || ".")} of the build context`, {
        cause,
      });
    }
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise<void>((resolveTurn) => setImmediate(resolveTurn));
      }
      await visit(path);
    }
  };

  const visit = async (path: string): Promise<void> => {
    const abs = join(root, path);
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch (cause) {
      throw new InvalidInputError(`cannot read ${JSON.stringify(path)} of the build context`, { cause });
    }
    const excluded = matcher.ignores(path);
    if (st.isDirectory()) {
      if (excluded) {
        // Docker descends into an excluded directory only when an exception pattern could match under it.
        const dirSlash = `${path}/`;
        if (exceptions.some((p) => `${p}/`.startsWith(dirSlash))) await walk(path);
        return;
      }
      entries.push({ path, type: "directory", mode: 0o755, size: 0 });
      await walk(path);
      return;
    }
    if (excluded) return;
    if (st.isFile()) {
      try {
        accessSync(abs, constants.R_OK);
      } catch (cause) {
        throw new InvalidInputError(`cannot read ${JSON.stringify(path)} of the build context`, { cause });
      }
      entries.push({
        path,
        type: "file",
        mode: normalizeMode("file", st.mode),
        size: st.size,
        source,
      });
    } else if (st.isSymbolicLink()) {
      entries.push({ path, type: "symlink", mode: 0o777, size: 0, linkname: readlinkSync(abs) });
    } else {
      warnings.push(`skipped ${JSON.stringify(path)}: not a regular file, directory or symlink`);
    }
  };

  await walk("");
  return { entries: normalizeEntries(entries), warnings };
}
