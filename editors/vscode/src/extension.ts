/**
 * The Remora VS Code extension: starts `remora serve` over stdio, forwards the `remora.*`
 * settings, shows the Language Pack status from `remora/packStatus` in the status bar and lets
 * the user activate or deactivate packs. All protocol wording lives in ./packs.ts.
 */

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";

import {
  actionFor,
  describePack,
  type PackInfo,
  parsePackList,
  SERVER_SETTING_KEYS,
  severity,
  statusText,
  tooltipText,
} from "./packs";

const LANGUAGES = ["python", "javascript", "javascriptreact", "typescript", "typescriptreact"];
const PACK_STATUS = "remora/packStatus";
const LIST_PACKS = "remora/listPacks";
const ACTIVATE = "remora.activatePack";
const DEACTIVATE = "remora.deactivatePack";
const PACK_COMMANDS = [ACTIVATE, DEACTIVATE];

let extension: RemoraExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extension = new RemoraExtension(context);
  await extension.start();
}

export async function deactivate(): Promise<void> {
  await extension?.dispose();
  extension = undefined;
}

/**
 * Only the settings the user actually set: sending package.json defaults would hide the
 * server's own layers (`$REMORA_HOME/config.yaml`, `REMORA_*` environment variables).
 */
function explicitServerSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("remora");
  const out: Record<string, unknown> = {};
  for (const key of SERVER_SETTING_KEYS) {
    const seen = config.inspect(key);
    const value = seen?.workspaceFolderValue ?? seen?.workspaceValue ?? seen?.globalValue;
    if (value !== undefined) {
      out[key] = value;
    }
  }
  return out;
}

class RemoraExtension {
  private client: LanguageClient | undefined;
  private packs: PackInfo[] = [];
  private readonly statusItem: vscode.StatusBarItem;
  private readonly output: vscode.LogOutputChannel;
  /** Our stand-ins for the pack commands while the server does not provide them. */
  private readonly fallbacks = new Map<string, vscode.Disposable>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel("Remora", { log: true });
    this.statusItem = vscode.window.createStatusBarItem("remora.status", vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = "Remora Language Packs";
    this.statusItem.command = "remora.showPacks";
    this.render();
    this.statusItem.show();

    this.disposables.push(
      this.output,
      this.statusItem,
      vscode.commands.registerCommand("remora.showPacks", () => this.showPacks()),
      vscode.commands.registerCommand("remora.restartServer", () => this.restart()),
      vscode.workspace.onDidChangeConfiguration((event) => this.onConfigurationChanged(event)),
    );
    this.claimPackCommands([]);
    context.subscriptions.push({ dispose: () => void this.dispose() });
  }

  // -- server lifecycle ------------------------------------------------------------------------

  async start(): Promise<void> {
    const config = vscode.workspace.getConfiguration("remora");
    const command = config.get<string>("serverPath", "remora") || "remora";
    const args = config.get<string[]>("serverArgs", ["serve"]);
    // No `transport`: with TransportKind.stdio the client would append `--stdio` to the
    // arguments, which `remora serve` does not take. Plain executables talk over stdio anyway.
    const serverOptions: ServerOptions = { command, args, options: { env: process.env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: LANGUAGES.flatMap((language) => [
        { scheme: "file", language },
        { scheme: "untitled", language },
      ]),
      initializationOptions: explicitServerSettings(),
      outputChannel: this.output,
      middleware: {
        executeCommand: (cmd, cmdArgs, next) =>
          PACK_COMMANDS.includes(cmd) ? this.runPackCommand(cmd, cmdArgs) : next(cmd, cmdArgs),
      },
    };
    const client = new LanguageClient("remora", "Remora", serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((event) => this.onStateChanged(client, event.newState));
    client.onNotification(PACK_STATUS, (params: unknown) => this.setPacks(parsePackList(params)));
    try {
      await client.start();
    } catch (error) {
      this.output.appendLine(`Could not start ${command} ${args.join(" ")}: ${String(error)}`);
      this.render();
      void vscode.window
        .showErrorMessage(
          `Remora: could not start the language server \`${command}\`. Set "remora.serverPath" to the remora executable.`,
          "Open Settings",
        )
        .then((choice) => {
          if (choice) {
            void vscode.commands.executeCommand("workbench.action.openSettings", "remora.serverPath");
          }
        });
      return;
    }
    await this.refresh();
  }

  async restart(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    if (old) {
      try {
        await old.stop();
      } catch (error) {
        this.output.appendLine(`Stopping the server failed: ${String(error)}`);
      }
      await old.dispose().catch(() => undefined);
    }
    this.setPacks([]);
    await this.start();
  }

  async dispose(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const d of this.fallbacks.values()) {
      d.dispose();
    }
    this.fallbacks.clear();
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
    if (client) {
      await client.dispose().catch(() => undefined);
    }
  }

  private onStateChanged(client: LanguageClient, state: State): void {
    if (client !== this.client) {
      return;
    }
    if (state === State.Starting) {
      // The client registers the server's commands itself once initialized; ours must go first.
      this.releasePackCommands();
    } else if (state === State.Running) {
      this.claimPackCommands(client.initializeResult?.capabilities.executeCommandProvider?.commands ?? []);
    } else {
      this.claimPackCommands([]);
      this.setPacks([]);
    }
    this.render();
  }

  private onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (!event.affectsConfiguration("remora")) {
      return;
    }
    if (event.affectsConfiguration("remora.serverPath") || event.affectsConfiguration("remora.serverArgs")) {
      void this.restart();
      return;
    }
    const client = this.client;
    if (client?.state === State.Running) {
      void client
        .sendNotification(DidChangeConfigurationNotification.type, { settings: { remora: explicitServerSettings() } })
        .catch((error) => this.output.appendLine(`Sending settings failed: ${String(error)}`));
    }
  }

  // -- pack commands ---------------------------------------------------------------------------

  /** Registers our own pack commands for every id the server does not advertise. */
  private claimPackCommands(advertised: string[]): void {
    for (const id of PACK_COMMANDS) {
      if (!advertised.includes(id) && !this.fallbacks.has(id)) {
        this.fallbacks.set(id, vscode.commands.registerCommand(id, (...args: unknown[]) => this.runPackCommand(id, args)));
      }
    }
  }

  private releasePackCommands(): void {
    for (const d of this.fallbacks.values()) {
      d.dispose();
    }
    this.fallbacks.clear();
  }

  /** Activate or deactivate a pack; asks which one when called without a name. */
  private async runPackCommand(command: string, args: unknown[]): Promise<unknown> {
    const client = this.client;
    if (!client || client.state !== State.Running) {
      const choice = await vscode.window.showErrorMessage("Remora: the language server is not running.", "Restart");
      if (choice) {
        await this.restart();
      }
      return undefined;
    }
    let name = typeof args[0] === "string" ? args[0] : undefined;
    if (!name) {
      const activating = command === ACTIVATE;
      const candidates = (await this.listPacks()).filter((p) => (actionFor(p) === "activate") === activating);
      if (candidates.length === 0) {
        void vscode.window.showInformationMessage(
          activating ? "Remora: every installed pack is already active." : "Remora: no pack is active.",
        );
        return undefined;
      }
      const picked = await vscode.window.showQuickPick(
        candidates.map((p) => ({ label: p.name, description: `${p.version} · ${p.state}`, pack: p })),
        { placeHolder: activating ? "Pack to activate" : "Pack to deactivate" },
      );
      if (!picked) {
        return undefined;
      }
      name = picked.pack.name;
    }
    try {
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [name] });
      const packs = parsePackList(result);
      if (packs.length > 0) {
        this.setPacks(packs);
      }
      return result;
    } catch (error) {
      void vscode.window.showErrorMessage(`Remora: ${command} ${name} failed: ${errorMessage(error)}`);
      return undefined;
    }
  }

  // -- status ----------------------------------------------------------------------------------

  private async listPacks(): Promise<PackInfo[]> {
    const client = this.client;
    if (!client || client.state !== State.Running) {
      return this.packs;
    }
    try {
      const packs = parsePackList(await client.sendRequest(LIST_PACKS));
      this.setPacks(packs);
      return packs;
    } catch (error) {
      this.output.appendLine(`${LIST_PACKS} failed: ${errorMessage(error)}`);
      return this.packs;
    }
  }

  private async refresh(): Promise<void> {
    await this.listPacks();
  }

  private setPacks(packs: PackInfo[]): void {
    this.packs = packs;
    this.render();
  }

  private render(): void {
    const item = this.statusItem;
    const running = this.client?.state === State.Running;
    if (!running) {
      item.text = this.client?.state === State.Starting ? "$(sync~spin) Remora" : "$(circle-slash) Remora";
      item.tooltip = "Remora: the language server is not running. Click for packs, or run “Remora: Restart Language Server”.";
      item.backgroundColor = undefined;
      return;
    }
    item.text = statusText(this.packs);
    item.tooltip = tooltipText(this.packs);
    item.backgroundColor =
      severity(this.packs) === "error" ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  private async showPacks(): Promise<void> {
    type Row = vscode.QuickPickItem & { run?: () => Promise<unknown> };
    const packs = await this.listPacks();
    const rows: Row[] = [...packs]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => {
        const action = actionFor(p);
        const command = action === "activate" ? ACTIVATE : DEACTIVATE;
        return {
          label: `${stateIcon(p)} ${p.name}`,
          description: `${p.version} · ${p.state}${p.signed ? "" : " · unsigned"} — select to ${action}`,
          detail: describePack(p),
          run: () => this.runPackCommand(command, [p.name]),
        };
      });
    if (rows.length === 0) {
      rows.push({ label: "No Language Packs installed", description: "install packs under $REMORA_HOME/packs" });
    }
    rows.push(
      { label: "", kind: vscode.QuickPickItemKind.Separator },
      { label: "$(debug-restart) Restart Remora server", run: () => this.restart() },
      { label: "$(output) Show Remora log", run: async () => this.output.show(true) },
    );
    const picked = await vscode.window.showQuickPick(rows, {
      title: "Remora Language Packs",
      placeHolder: "Select a pack to activate or deactivate it",
      matchOnDescription: true,
    });
    await picked?.run?.();
  }
}

function stateIcon(p: PackInfo): string {
  switch (p.state) {
    case "ready":
      return "$(check)";
    case "loading":
      return "$(sync~spin)";
    case "error":
      return "$(warning)";
    default:
      return "$(circle-outline)";
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
