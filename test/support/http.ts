// GET through a port forward, retried while the server in the pod may not listen yet.
import http from "node:http";

export interface RetryOptions {
  /** Give up after this long, ms (default 10 000). */
  withinMs?: number;
  /** Pause between attempts, ms (default 250). */
  everyMs?: number;
  /** Stop retrying early, e.g. once the process that should serve has exited. */
  gaveUp?: () => boolean;
}

/** One GET: the body of a 2xx answer; rejects on other statuses, errors, or no answer within 5 s. */
export function get(url: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const request = http.get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve(body);
        else reject(new Error(`GET ${url}: HTTP ${code}`));
      });
    });
    request.on("error", reject);
    request.setTimeout(5_000, () => request.destroy(new Error(`GET ${url}: no answer within 5 s`)));
  });
}

/** {@link get}, retried until it succeeds or `withinMs` passed (then the last error is thrown). */
export async function getWithRetry(url: string, options: RetryOptions = {}): Promise<string> {
  const deadline = Date.now() + (options.withinMs ?? 10_000);
  for (;;) {
    try {
      return await get(url);
    } catch (err) {
      if (Date.now() > deadline || options.gaveUp?.()) throw err;
      await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 250));
    }
  }
}
