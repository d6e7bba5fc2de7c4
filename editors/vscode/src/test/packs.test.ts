/** Unit tests for the pack-status wording; run with `node --test out/test/` after `tsc -p .`. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { actionFor, describePack, type PackInfo, parsePackList, severity, shortUri, statusText, tooltipText } from "../packs";

function pack(name: string, state: PackInfo["state"], extra: Partial<PackInfo> = {}): PackInfo {
  return { name, version: "0.1.0", state, reason: null, triggeredBy: [], signed: true, ...extra };
}

test("ready and loading packs are named in order, inactive ones are not", () => {
  const packs = [pack("pydantic", "loading"), pack("fastapi", "ready"), pack("numpy", "inactive")];
  assert.equal(statusText(packs), "$(sync~spin) Remora: fastapi ✓ pydantic …");
  assert.equal(severity(packs), "loading");
});

test("all ready shows no codicon", () => {
  assert.equal(statusText([pack("fastapi", "ready")]), "Remora: fastapi ✓");
  assert.equal(statusText([]), "Remora");
  assert.equal(severity([]), "idle");
});

test("an error wins over loading and gets the warning codicon", () => {
  const packs = [pack("a", "loading"), pack("b", "error", { reason: "manifest: `version` missing" })];
  assert.equal(severity(packs), "error");
  assert.ok(statusText(packs).startsWith("$(warning) Remora: a … b ✗"));
});

test("tooltip lists state, unsigned label, reason and importing files", () => {
  const p = pack("fastapi", "ready", { signed: false, triggeredBy: ["file:///proj/app/main%20x.py"] });
  assert.equal(describePack(p), "fastapi 0.1.0 — ready (unsigned) — imported by main x.py");
  const tip = tooltipText([p, pack("bad", "error", { reason: "bad manifest" })]);
  assert.match(tip, /bad 0\.1\.0 — error: bad manifest/);
  assert.match(tip, /fastapi 0\.1\.0 — ready \(unsigned\)/);
  assert.match(tooltipText([]), /no Language Packs/);
});

test("parsePackList keeps well-formed entries and defaults the rest", () => {
  const parsed = parsePackList({
    packs: [
      { name: "fastapi", version: "0.1.0", state: "ready", reason: null, triggeredBy: ["file:///a.py", 3], signed: false },
      { name: "weird", state: "exploded" },
      { version: "1" },
      "junk",
    ],
  });
  assert.deepEqual(parsed, [
    { name: "fastapi", version: "0.1.0", state: "ready", reason: null, triggeredBy: ["file:///a.py"], signed: false },
    { name: "weird", version: "", state: "error", reason: null, triggeredBy: [], signed: false },
  ]);
  assert.deepEqual(parsePackList(null), []);
  assert.deepEqual(parsePackList({ packs: "no" }), []);
});

test("the offered action depends on the state", () => {
  assert.equal(actionFor(pack("a", "ready")), "deactivate");
  assert.equal(actionFor(pack("a", "loading")), "deactivate");
  assert.equal(actionFor(pack("a", "inactive")), "activate");
  assert.equal(actionFor(pack("a", "error")), "activate");
});

test("shortUri takes the last segment", () => {
  assert.equal(shortUri("file:///x/y/z.ts"), "z.ts");
  assert.equal(shortUri("untitled:Untitled-1"), "untitled:Untitled-1");
});
