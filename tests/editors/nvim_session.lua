-- A scripted Neovim session against a real `remora serve`, driven by tests/editors/test_nvim.py.
-- Input: $REMORA_NVIM_TEST, a JSON object
--   {cmd = [...], settings = {...} or nil, file = "...", out = "...", timeout_ms = n,
--    status_only = bool (stop once the pack status has settled)}.
-- Output: a JSON report at `out`; Neovim always quits, even when a step fails.

local cfg = vim.json.decode(os.getenv("REMORA_NVIM_TEST"))
local timeout = cfg.timeout_ms or 20000
local v = vim.version()
local report = { nvim = string.format("%d.%d.%d", v.major, v.minor, v.patch), steps = {}, messages = {} }

local function step(name)
  table.insert(report.steps, name)
end

-- Keep every notification (the :Remora* commands speak through vim.notify).
vim.notify = function(msg, level)
  table.insert(report.messages, { msg = tostring(msg), level = level })
end

local function find(packs, name)
  for _, p in ipairs(packs or {}) do
    if p.name == name then
      return p
    end
  end
  return nil
end

local function run()
  vim.cmd("filetype on")
  local remora = require("remora")
  remora.setup({ cmd = cfg.cmd, settings = cfg.settings })
  step("setup")

  vim.cmd("edit " .. vim.fn.fnameescape(cfg.file))
  local buf = vim.api.nvim_get_current_buf()
  report.filetype = vim.bo[buf].filetype
  report.attached = vim.wait(timeout, function()
    return remora.client(buf) ~= nil
  end, 50)
  local client = remora.client(buf)
  report.root_dir = client and client.config.root_dir or nil
  step("attached")

  -- Wait until fastapi settles: ready, or error (e.g. an unsigned pack that is not allowed).
  vim.wait(timeout, function()
    local p = find(remora.packs(buf), "fastapi")
    return p ~= nil and (p.state == "ready" or p.state == "error")
  end, 50)
  local settled = find(remora.packs(buf), "fastapi")
  report.ready = settled ~= nil and settled.state == "ready"
  report.packs_after_open = remora.packs(buf)
  report.statusline = remora.statusline(buf)
  step("ready")
  if cfg.status_only then
    return
  end

  -- Hover round trips: on the module name (`fastapi`, column 5) and on the imported name
  -- (`FastAPI`, column 20) of `from fastapi import FastAPI`.
  report.hover = {}
  for key, character in pairs({ module = 5, name = 20 }) do
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(buf) },
      position = { line = 0, character = character },
    }
    local responses = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, timeout)
    for _, response in pairs(responses or {}) do
      report.hover[key] = { err = response.err or vim.NIL, result = response.result or vim.NIL }
    end
  end
  step("hover")

  local listed = vim.lsp.buf_request_sync(buf, "remora/listPacks", nil, timeout)
  for _, response in pairs(listed or {}) do
    report.list_packs = { err = response.err or vim.NIL, result = response.result or vim.NIL }
  end
  step("listPacks")

  report.completion = vim.fn.getcompletion("RemoraDeactivate fa", "cmdline")
  vim.cmd("RemoraPacks")
  vim.wait(timeout, function()
    for _, m in ipairs(report.messages) do
      if m.msg:find("Remora Language Packs", 1, true) then
        return true
      end
    end
    return false
  end, 50)
  step("RemoraPacks")

  vim.cmd("RemoraDeactivate fastapi")
  report.deactivated = vim.wait(timeout, function()
    local p = find(remora.packs(buf), "fastapi")
    return p ~= nil and p.state == "inactive"
  end, 50)
  report.statusline_after_deactivate = remora.statusline(buf)
  step("deactivate")

  vim.cmd("RemoraActivate fastapi")
  report.reactivated = vim.wait(timeout, function()
    local p = find(remora.packs(buf), "fastapi")
    return p ~= nil and p.state == "ready"
  end, 50)
  step("activate")
end

local ok, err = xpcall(run, debug.traceback)
report.ok = ok
report.error = (not ok) and tostring(err) or nil

local f = assert(io.open(cfg.out, "w"))
f:write(vim.json.encode(report))
f:close()

for _, client in ipairs(vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()) do
  vim.lsp.stop_client(client.id)
end
vim.wait(3000, function()
  return #(vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()) == 0
end, 50)
vim.cmd("qa!")
