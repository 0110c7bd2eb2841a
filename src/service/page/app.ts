// The service's page: a repository and a ref in, the build's log live, the image name at the end. It talks
// to the service only through the unmodified @jupyterhub/binderhub-client, as BinderHub's own page does.
import { BinderRepository, type BinderEvent } from "@jupyterhub/binderhub-client/client.js";

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const TOKEN_KEY = "kce-service-token";

function setStatus(phase: string, text: string): void {
  const status = $("status");
  status.dataset.phase = phase;
  status.textContent = text;
}

function appendLog(message: string): void {
  const log = $<HTMLPreElement>("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(message);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function build(repo: string, ref: string, token: string): Promise<void> {
  // The build endpoint sits next to this page (whatever base URL the service has).
  const endpoint = new URL("build/", window.location.href);
  const spec = `git/${encodeURIComponent(repo)}/${encodeURIComponent(ref)}`;
  const binder = new BinderRepository(spec, endpoint, { apiToken: token, buildOnly: true });
  $("result").hidden = true;
  $<HTMLPreElement>("log").textContent = "";
  setStatus("waiting", "Starting…");
  let last: BinderEvent = {};
  for await (const event of binder.fetch()) {
    last = event;
    if (event.message) appendLog(event.message);
    const phase = event.phase ?? "building";
    if (phase === "ready") {
      binder.close();
      $("image").textContent = String(event.imageName ?? "");
      $("result").hidden = false;
      setStatus("ready", "Built.");
      return;
    }
    if (phase === "failed") {
      binder.close();
      setStatus("failed", "The build failed.");
      return;
    }
    setStatus(phase, phase === "waiting" ? "Waiting for a builder…" : `${phase[0]?.toUpperCase() ?? ""}${phase.slice(1)}…`);
  }
  if (last.phase !== "ready") setStatus("failed", "The connection to the service ended.");
}

function main(): void {
  const form = $<HTMLFormElement>("build-form");
  const tokenInput = $<HTMLInputElement>("token");
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = $<HTMLButtonElement>("build");
    const token = tokenInput.value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    button.disabled = true;
    build($<HTMLInputElement>("repo").value.trim(), $<HTMLInputElement>("ref").value.trim() || "HEAD", token)
      .catch((err: unknown) => setStatus("failed", `Error: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => (button.disabled = false));
  });
}

main();
