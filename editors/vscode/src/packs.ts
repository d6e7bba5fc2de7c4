/**
 * The pack-status model: the `remora/*` protocol types and the pure functions that turn a pack
 * list into status-bar text, a tooltip and quick-pick rows. Nothing here imports `vscode`, so
 * the wording is unit-tested under plain Node (see src/test/packs.test.ts).
 */

export type PackState = "loading" | "ready" | "error" | "inactive";

/** One entry of `remora/packStatus` and `remora/listPacks`. */
export interface PackInfo {
  name: string;
  version: string;
  state: PackState;
  reason: string | null;
  triggeredBy: string[];
  signed: boolean;
}

/** Params of `remora/packStatus`, result of `remora/listPacks`. */
export interface PackList {
  packs: PackInfo[];
}

/** The setting keys the server understands; everything else under `remora.*` is editor-only. */
export const SERVER_SETTING_KEYS = [
  "allow_unsigned",
  "max_active_packs",
  "deactivate_grace_seconds",
  "debounce_ms",
  "max_document_bytes",
  "log_level",
] as const;

const STATE_MARK: Record<PackState, string> = {
  ready: "✓",
  loading: "…",
  error: "✗",
  inactive: "○",
};

/** Accepts whatever arrived over the wire and keeps only well-formed entries. */
export function parsePackList(value: unknown): PackInfo[] {
  if (typeof value !== "object" || value === null) {
    return [];
  }
  const packs = (value as { packs?: unknown }).packs;
  if (!Array.isArray(packs)) {
    return [];
  }
  const out: PackInfo[] = [];
  for (const raw of packs) {
    if (typeof raw !== "object" || raw === null) {
      continue;
    }
    const p = raw as Record<string, unknown>;
    if (typeof p.name !== "string") {
      continue;
    }
    const state = typeof p.state === "string" && p.state in STATE_MARK ? (p.state as PackState) : "error";
    out.push({
      name: p.name,
      version: typeof p.version === "string" ? p.version : "",
      state,
      reason: typeof p.reason === "string" ? p.reason : null,
      triggeredBy: Array.isArray(p.triggeredBy) ? p.triggeredBy.filter((u): u is string => typeof u === "string") : [],
      signed: p.signed === true,
    });
  }
  return out;
}

/** Packs the status bar should name: everything that is not plainly inactive. */
export function visiblePacks(packs: PackInfo[]): PackInfo[] {
  return packs.filter((p) => p.state !== "inactive").sort((a, b) => a.name.localeCompare(b.name));
}

/** Overall look of the status item. */
export type Severity = "idle" | "loading" | "ok" | "error";

export function severity(packs: PackInfo[]): Severity {
  if (packs.some((p) => p.state === "error")) {
    return "error";
  }
  if (packs.some((p) => p.state === "loading")) {
    return "loading";
  }
  return packs.some((p) => p.state === "ready") ? "ok" : "idle";
}

/** "Remora: fastapi ✓ pydantic …", with a codicon prefix while loading or on error. */
export function statusText(packs: PackInfo[]): string {
  const shown = visiblePacks(packs);
  const names = shown.map((p) => `${p.name} ${STATE_MARK[p.state]}`).join(" ");
  const body = names ? `Remora: ${names}` : "Remora";
  switch (severity(packs)) {
    case "loading":
      return `$(sync~spin) ${body}`;
    case "error":
      return `$(warning) ${body}`;
    default:
      return body;
  }
}

/** The last path segment of a document URI, for compact "triggered by" lists. */
export function shortUri(uri: string): string {
  const trimmed = uri.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const tail = slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
  try {
    return decodeURIComponent(tail);
  } catch {
    return tail;
  }
}

/** One line per pack: name, version, state, unsigned label, reason, triggering files. */
export function describePack(p: PackInfo): string {
  let line = `${p.name} ${p.version} — ${p.state}`;
  if (!p.signed) {
    line += " (unsigned)";
  }
  if (p.reason) {
    line += `: ${p.reason}`;
  }
  if (p.triggeredBy.length > 0) {
    line += ` — imported by ${p.triggeredBy.map(shortUri).join(", ")}`;
  }
  return line;
}

/** Plain-text tooltip listing every pack the server reported. */
export function tooltipText(packs: PackInfo[]): string {
  if (packs.length === 0) {
    return "Remora: no Language Packs installed or active.\nClick to manage packs.";
  }
  const lines = [...packs].sort((a, b) => a.name.localeCompare(b.name)).map(describePack);
  return ["Remora Language Packs", ...lines, "", "Click to activate or deactivate a pack."].join("\n");
}

/** What a quick-pick row should offer for a pack in a given state. */
export function actionFor(p: PackInfo): "activate" | "deactivate" {
  return p.state === "inactive" || p.state === "error" ? "activate" : "deactivate";
}
