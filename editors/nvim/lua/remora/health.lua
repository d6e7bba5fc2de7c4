-- :checkhealth remora — is the server executable found, is a client running, what packs are on.

local M = {}

local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local err = health.error or health.report_error
local info = health.info or health.report_info

local function version()
  local v = vim.version()
  return string.format("%d.%d.%d", v.major, v.minor, v.patch)
end

function M.check()
  local remora = require("remora")
  start("remora")
  if vim.fn.has("nvim-0.7") == 1 then
    ok("Neovim " .. version())
  else
    err("Neovim 0.7 or newer is required")
  end
  local cmd = remora.config.cmd or {}
  local exe = cmd[1]
  if exe and vim.fn.executable(exe) == 1 then
    ok("server command: " .. table.concat(cmd, " "))
  else
    err(
      "server executable not found: " .. tostring(exe),
      { 'pass setup{ cmd = { "/path/to/.venv/bin/remora", "serve" } }' }
    )
  end
  local client = remora.client()
  if client then
    ok(string.format("client %d running, root %s", client.id, tostring(client.config.root_dir)))
    local packs = remora.packs()
    if #packs == 0 then
      info("no packs reported yet")
    end
    for _, p in ipairs(packs) do
      info(remora.describe(p))
    end
  else
    warn("no Remora client running (open a Python, JavaScript or TypeScript file)")
  end
end

return M
