/**
 * Server-sent events as BinderHub writes them (`data: <json>` blocks, `:keepalive` comments), plus the `id:`
 * that lets a client resume with `Last-Event-ID`. Pure.
 */

/** One event block: `id: …` (when given) and `data: <one line of JSON>`, ended by a blank line. */
export function formatEvent(data: object, id?: string): string {
  // JSON.stringify never emits a raw newline, so the data stays on one `data:` line.
  return `${id !== undefined ? `id: ${id.replace(/[\r\n]/g, "")}\n` : ""}data: ${JSON.stringify(data)}\n\n`;
}

/** A comment block (ignored by clients); BinderHub sends `:keepalive` every 25 s through idle proxies. */
export function formatComment(text: string): string {
  return `:${text.replace(/[\r\n]/g, " ")}\n\n`;
}

export const KEEPALIVE_INTERVAL_MS = 25_000;
