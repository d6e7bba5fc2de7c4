// Runs the bundled VS Code extension under plain Node against a real `remora serve`, with a
// stand-in `vscode` module: just enough of the API is real (configuration, documents, commands,
// status bar, quick pick, events) for vscode-languageclient to start the server, open one
// document and run the pack commands; everything else is an inert stub.
//
// Usage: node vscode_harness.js <extension.js>; input in $REMORA_VSCODE_TEST as JSON
// {serverPath, file, settings, timeoutMs, scenario: "normal"|"unsigned"}; prints a JSON report on stdout's last line.

"use strict";

const Module = require("module");
const path = require("path");
const fs = require("fs");

const cfg = JSON.parse(process.env.REMORA_VSCODE_TEST);
const report = { statusTexts: [], errors: [], infos: [], steps: [] };

// -- an inert stub: any property is another stub, calling or constructing it returns a stub ------
function stub() {
  const fn = function () {};
  return new Proxy(fn, {
    get(target, key) {
      if (key === "then") return undefined; // never look like a promise
      if (key === "dispose") return () => undefined;
      if (key === Symbol.toPrimitive) return () => "";
      if (!(key in target)) target[key] = stub();
      return target[key];
    },
    apply: () => stub(),
    construct: () => stub(),
  });
}

function withStub(real) {
  return new Proxy(real, {
    get(target, key) {
      if (key in target) return target[key];
      if (key === "then") return undefined;
      target[key] = stub();
      return target[key];
    },
  });
}

// -- the real parts ---------------------------------------------------------------------------
class Disposable {
  constructor(fn) {
    this.fn = fn;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose()));
  }
  dispose() {
    if (this.fn) this.fn();
    this.fn = undefined;
  }
}

class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener, thisArg) => {
      const bound = listener.bind(thisArg);
      this.listeners.add(bound);
      return new Disposable(() => this.listeners.delete(bound));
    };
  }
  fire(value) {
    for (const l of [...this.listeners]) l(value);
  }
  dispose() {
    this.listeners.clear();
  }
}

class Uri {
  constructor(scheme, p) {
    this.scheme = scheme;
    this.path = p;
    this.fsPath = p;
    this.authority = "";
    this.query = "";
    this.fragment = "";
  }
  static file(p) {
    return new Uri("file", p);
  }
  static parse(value) {
    const m = /^([a-z]+):\/\/(.*)$/.exec(value);
    return m ? new Uri(m[1], decodeURIComponent(m[2])) : new Uri("untitled", value);
  }
  toString() {
    return `${this.scheme}://${this.path.split("/").map(encodeURIComponent).join("/")}`;
  }
  toJSON() {
    return this.toString();
  }
  with(change) {
    return new Uri(change.scheme ?? this.scheme, change.path ?? this.path);
  }
}

class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
}
class Range {
  constructor(a, b, c, d) {
    if (typeof a === "number") {
      this.start = new Position(a, b);
      this.end = new Position(c, d);
    } else {
      this.start = a;
      this.end = b;
    }
  }
}
class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}

const text = fs.readFileSync(cfg.file, "utf8");
const lines = text.split("\n");
const document = {
  uri: Uri.file(cfg.file),
  fileName: cfg.file,
  languageId: "python",
  version: 1,
  isClosed: false,
  isDirty: false,
  isUntitled: false,
  lineCount: lines.length,
  eol: 1,
  getText: () => text,
  lineAt: (n) => ({ text: lines[typeof n === "number" ? n : n.line] }),
};

const statusItems = [];
function createStatusBarItem() {
  const item = { text: "", tooltip: undefined, backgroundColor: undefined, visible: false };
  item.show = () => (item.visible = true);
  item.hide = () => (item.visible = false);
  item.dispose = () => undefined;
  statusItems.push(item);
  let current = "";
  Object.defineProperty(item, "text", {
    get: () => current,
    set: (v) => {
      current = v;
      report.statusTexts.push(v);
    },
  });
  return item;
}

function outputChannel(name) {
  const log = (level) => (msg) => process.stderr.write(`[${name}:${level}] ${msg}\n`);
  return withStub({
    name,
    append: log("append"),
    appendLine: log("line"),
    trace: log("trace"),
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    show: () => undefined,
    hide: () => undefined,
    clear: () => undefined,
    replace: () => undefined,
    dispose: () => undefined,
    logLevel: 2,
    onDidChangeLogLevel: new EventEmitter().event,
  });
}

let pickAnswer = (items) => items[0];
const configurationChanged = new EventEmitter();
const commandTable = new Map();
const settings = { "remora.serverPath": cfg.serverPath, "remora.serverArgs": ["serve"], ...cfg.settings };

function configuration(section) {
  const key = (k) => (section ? `${section}.${k}` : k);
  return withStub({
    get: (k, def) => (key(k) in settings ? settings[key(k)] : def),
    has: (k) => key(k) in settings,
    inspect: (k) => (key(k) in settings ? { key: key(k), globalValue: settings[key(k)] } : { key: key(k) }),
    update: async () => undefined,
  });
}

function score(selector, doc) {
  const list = Array.isArray(selector) ? selector : [selector];
  return list.some(
    (s) =>
      (typeof s === "string" && s === doc.languageId) ||
      (typeof s === "object" && (!s.language || s.language === doc.languageId) && (!s.scheme || s.scheme === doc.uri.scheme)),
  )
    ? 10
    : 0;
}

const vscode = withStub({
  version: "1.91.0",
  Disposable,
  EventEmitter,
  Uri,
  Position,
  Range,
  ThemeColor,
  StatusBarAlignment: { Left: 1, Right: 2 },
  QuickPickItemKind: { Separator: -1, Default: 0 },
  env: withStub({ appName: "Harness", language: "en", machineId: "harness", sessionId: "harness", uriScheme: "vscode" }),
  window: withStub({
    createStatusBarItem,
    createOutputChannel: outputChannel,
    showErrorMessage: async (msg) => {
      report.errors.push(msg);
      return undefined;
    },
    showWarningMessage: async (msg) => {
      report.errors.push(msg);
      return undefined;
    },
    showInformationMessage: async (msg) => {
      report.infos.push(msg);
      return undefined;
    },
    showQuickPick: async (items) => pickAnswer(await items),
    visibleTextEditors: [],
    activeTextEditor: undefined,
    onDidChangeActiveTextEditor: new EventEmitter().event,
    onDidChangeVisibleTextEditors: new EventEmitter().event,
  }),
  workspace: withStub({
    getConfiguration: configuration,
    onDidChangeConfiguration: configurationChanged.event,
    textDocuments: [document],
    workspaceFolders: [{ uri: Uri.file(path.dirname(cfg.file)), name: "proj", index: 0 }],
    onDidOpenTextDocument: new EventEmitter().event,
    onDidCloseTextDocument: new EventEmitter().event,
    onDidChangeTextDocument: new EventEmitter().event,
    onDidSaveTextDocument: new EventEmitter().event,
    onWillSaveTextDocument: new EventEmitter().event,
    onDidChangeWorkspaceFolders: new EventEmitter().event,
    getWorkspaceFolder: () => undefined,
  }),
  languages: withStub({ match: score }),
  commands: withStub({
    registerCommand: (id, fn) => {
      if (commandTable.has(id)) throw new Error(`command '${id}' already exists`);
      commandTable.set(id, fn);
      return new Disposable(() => commandTable.delete(id));
    },
    executeCommand: async (id, ...args) => {
      const fn = commandTable.get(id);
      if (!fn) throw new Error(`command '${id}' not found`);
      return fn(...args);
    },
    getCommands: async () => [...commandTable.keys()],
  }),
});

const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === "vscode") return vscode;
  return load.call(this, request, parent, isMain);
};

// -- the session ------------------------------------------------------------------------------
const timeout = cfg.timeoutMs || 20000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, predicate) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (predicate()) return true;
    await sleep(50);
  }
  report.timeouts = [...(report.timeouts || []), what];
  return false;
}
const status = () => statusItems[0];

async function main() {
  const extension = require(path.resolve(process.argv[2]));
  const context = { subscriptions: [], extensionPath: path.dirname(process.argv[2]) };
  await extension.activate(context);
  report.steps.push("activated");
  report.commands = [...commandTable.keys()].filter((c) => c.startsWith("remora.")).sort();

  if (cfg.scenario === "unsigned") {
    // Unsigned packs not allowed: the pack is in error, the item warns.
    report.errored = await waitFor("error", () => status().text.includes("fastapi ✗"));
    report.errorText = status().text;
    report.errorTooltip = status().tooltip;
    report.errorBackground = status().backgroundColor ? status().backgroundColor.id : null;
    // The user allows unsigned packs in the settings: didChangeConfiguration, the pack loads.
    settings["remora.allow_unsigned"] = true;
    configurationChanged.fire({ affectsConfiguration: (s) => "remora.allow_unsigned".startsWith(s) });
    report.readyAfterSetting = await waitFor("ready after setting", () => status().text.includes("fastapi ✓"));
    report.textAfterSetting = status().text;
    await extension.deactivate();
    return;
  }

  report.ready = await waitFor("ready", () => status().text.includes("fastapi ✓"));
  report.readyText = status().text;
  report.readyTooltip = status().tooltip;
  report.readyBackground = status().backgroundColor ? status().backgroundColor.id : null;

  await vscode.commands.executeCommand("remora.deactivatePack", "fastapi");
  report.deactivated = await waitFor("deactivated", () => status().text === "Remora");
  report.deactivatedText = status().text;

  // The status item's click: the quick pick lists fastapi, selecting it activates it again.
  pickAnswer = (items) => {
    report.pickLabels = items.map((i) => i.label);
    return items.find((i) => i.label.includes("fastapi"));
  };
  await vscode.commands.executeCommand(status().command);
  report.reactivated = await waitFor("reactivated", () => status().text.includes("fastapi ✓"));

  // Activate without a name asks which pack; none is inactive now, so nothing is offered.
  pickAnswer = (items) => {
    report.activateOffered = items.map((i) => i.label);
    return undefined;
  };
  await vscode.commands.executeCommand("remora.activatePack");
  report.activateInfo = report.infos.slice(-1)[0];

  await vscode.commands.executeCommand("remora.restartServer");
  report.afterRestart = await waitFor("after restart", () => status().text.includes("fastapi ✓"));

  await extension.deactivate();
  report.steps.push("deactivated");
  report.commandsAfterDeactivate = [...commandTable.keys()].filter((c) => c.startsWith("remora."));
}

main()
  .then(() => (report.ok = true))
  .catch((error) => {
    report.ok = false;
    report.error = String(error && error.stack ? error.stack : error);
  })
  .finally(() => {
    process.stdout.write("\n" + JSON.stringify(report) + "\n");
    setTimeout(() => process.exit(0), 200);
  });
