/** Pure parsers for the HTTP headers the distribution API relies on: `WWW-Authenticate` and `Link`. */

/** One challenge of a `WWW-Authenticate` header. Scheme lowercased; parameter names lowercased. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge used it instead of parameters. */
  token68?: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*/;

/** A small cursor over a header value. */
class Cursor {
  constructor(
    private readonly text: string,
    public pos = 0,
  ) {}
  skipSpace(): void {
    while (this.pos < this.text.length && /[ \t]/.test(this.text.charAt(this.pos))) this.pos++;
  }
  done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): string {
    return this.text.charAt(this.pos);
  }
  match(re: RegExp): string | null {
    const m = re.exec(this.text.slice(this.pos));
    if (!m) return null;
    this.pos += m[0].length;
    return m[0];
  }
  quoted(): string | null {
    if (this.peek() !== '"') return null;
    let out = "";
    for (let i = this.pos + 1; i < this.text.length; i++) {
      const c = this.text.charAt(i);
      if (c === "\\" && i + 1 < this.text.length) out += this.text.charAt(++i);
      else if (c === '"') {
        this.pos = i + 1;
        return out;
      } else out += c;
    }
    return null; // unterminated
  }
  /** Whether `name =` follows (an auth-param) rather than the next challenge's scheme. */
  paramAhead(): boolean {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*=(?!=)/.exec(this.text.slice(this.pos));
    return m !== null;
  }
  skipTo(char: string): void {
    const i = this.text.indexOf(char, this.pos);
    this.pos = i < 0 ? this.text.length : i;
  }
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1) into its challenges, e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"`
 * → `[{scheme: "bearer", params: {realm, service, scope}}]`. Several challenges may share one header.
 * Malformed parts are skipped, never thrown on: an unreadable challenge is reported by the caller.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  const cur = new Cursor(header);
  while (!cur.done()) {
    cur.skipSpace();
    if (cur.peek() === ",") {
      cur.pos++;
      continue;
    }
    const scheme = cur.match(TOKEN);
    if (!scheme) {
      cur.skipTo(",");
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    cur.skipSpace();
    if (!cur.paramAhead()) {
      const token68 = cur.match(TOKEN68);
      if (token68) challenge.token68 = token68;
    }
    parseParams(cur, challenge.params);
  }
  return challenges;
}

function parseParams(cur: Cursor, params: Record<string, string>): void {
  for (;;) {
    cur.skipSpace();
    while (cur.peek() === ",") {
      cur.pos++;
      cur.skipSpace();
    }
    if (cur.done() || !cur.paramAhead()) return;
    const name = (cur.match(TOKEN) ?? "").toLowerCase();
    cur.skipSpace();
    cur.pos++; // "="
    cur.skipSpace();
    const value = cur.peek() === '"' ? cur.quoted() : cur.match(/^[^,\s]*/);
    if (value === null) {
      cur.skipTo(",");
      continue;
    }
    params[name] = value;
  }
}

/**
 * The target of the `rel="next"` link of a `Link` header (RFC 8288), resolved against `base` (the URL of
 * the request that returned it; the distribution API sends paths such as `</v2/_catalog?last=x&n=100>`).
 * Null when there is no next link or the header is absent.
 */
export function parseLinkNext(header: string | null, base: string): string | null {
  if (!header) return null;
  const entry = /<([^>]*)>([^<]*)/g;
  for (let m = entry.exec(header); m !== null; m = entry.exec(header)) {
    const rel = /(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^;,\s]+))/i.exec(m[2] ?? "");
    const rels = (rel?.[1] ?? rel?.[2] ?? "").toLowerCase().split(/\s+/);
    if (rels.includes("next")) {
      try {
        return new URL(m[1] ?? "", base).toString();
      } catch {
        return null; // an unparseable link ends pagination rather than failing the listing
      }
    }
  }
  return null;
}
