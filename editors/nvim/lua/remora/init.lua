-- Remora for Neovim: starts `remora serve` for Python, JavaScript and TypeScript buffers, keeps
-- the Language Pack status the server pushes with `remora/packStatus`, and offers a statusline
-- component plus :RemoraPacks, :RemoraActivate and :RemoraDeactivate.
--
-- Works with the built-in LSP client of Neovim 0.7 and newer: vim.lsp.start where it exists
-- (0.8+), vim.lsp.start_client + buf_attach_client before that.

local M = {}

local PACK_STATUS = "remora/packStatus"
local LIST_PACKS = "remora/listPacks"
local ACTIVATE = "remora.activatePack"
local DEACTIVATE = "remora.deactivatePack"

local MARKS = { ready = "✓", loading = "…", error = "✗", inactive = "○" }

local defaults = {
  -- The server command; point it at the remora inside your virtualenv if it is not on $PATH.
  cmd = { "remora", "serve" },
  -- Extra environment for the server, e.g. { REMORA_HOME = "~/.remora", REMORA_ALLOW_UNSIGNED = "1" }.
  cmd_env = nil,
  -- The `remora` settings section: allow_unsigned, max_active_packs, deactivate_grace_seconds,
  -- debounce_ms, max_document_bytes, log_level. Sent as initializationOptions and as
  -- workspace/didChangeConfiguration.
  settings = {},
  filetypes = { "python", "javascript", "javascriptreact", "typescript", "typescriptreact" },
  root_markers = { ".git", "pyproject.toml", "package.json" },
  name = "remora",
  capabilities = nil,
  on_attach = nil,
  -- Prefix of the statusline component.
  statusline_prefix = "Packs: ",
}

M.config = vim.deepcopy(defaults)

-- Last known pack list per client id, as the server reported it.
local packs_by_client = {}
-- Client ids by root directory, for Neovim versions without vim.lsp.start.
local legacy_clients = {}

local uv = vim.uv or vim.loop
local has_011 = vim.fn.has("nvim-0.11") == 1

---------------------------------------------------------------------------------------------
-- small compatibility layer
---------------------------------------------------------------------------------------------

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = "Remora" })
end

local function get_clients(filter)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients(filter)
  end
  local out = {}
  for _, client in pairs(vim.lsp.get_active_clients()) do
    local ok = (not filter.name or client.name == filter.name)
      and (not filter.id or client.id == filter.id)
      and (not filter.bufnr or vim.lsp.buf_is_attached(filter.bufnr, client.id))
    if ok then
      table.insert(out, client)
    end
  end
  return out
end

-- Client methods became `client:request(...)` in 0.11; older versions take no self.
local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

-- An empty Lua table would go over the wire as a JSON array; settings must be an object.
local function as_object(t)
  if type(t) ~= "table" or next(t) == nil then
    return vim.empty_dict()
  end
  return vim.deepcopy(t)
end

local function exists(path)
  return uv.fs_stat(path) ~= nil
end

local function dirname(path)
  return vim.fn.fnamemodify(path, ":h")
end

--- The nearest ancestor of `path` holding one of the root markers, else the file's directory.
function M.find_root(path, markers)
  markers = markers or M.config.root_markers
  if path == nil or path == "" then
    return uv.cwd()
  end
  path = vim.fn.fnamemodify(path, ":p")
  local dir = vim.fn.isdirectory(path) == 1 and path or dirname(path)
  dir = dir:gsub("/+$", "")
  if dir == "" then
    dir = "/"
  end
  local start = dir
  while true do
    for _, marker in ipairs(markers) do
      if exists(dir .. "/" .. marker) then
        return dir
      end
    end
    local parent = dirname(dir)
    if parent == dir or parent == "" then
      break
    end
    dir = parent
  end
  return start
end

---------------------------------------------------------------------------------------------
-- pack state
---------------------------------------------------------------------------------------------

local function sorted_packs(list)
  local out = {}
  for _, p in ipairs(list or {}) do
    if type(p) == "table" and type(p.name) == "string" then
      table.insert(out, p)
    end
  end
  table.sort(out, function(a, b)
    return a.name < b.name
  end)
  return out
end

local function set_packs(client_id, list)
  packs_by_client[client_id] = sorted_packs(list)
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "RemoraPackStatus", modeline = false })
  pcall(vim.cmd, "redrawstatus")
end

local function on_pack_status(err, result, ctx)
  if err or type(result) ~= "table" then
    return
  end
  set_packs(ctx.client_id, result.packs)
end

--- The Remora client attached to `bufnr` (default: current buffer), else any Remora client.
function M.client(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local attached = get_clients({ name = M.config.name, bufnr = bufnr })
  if attached[1] then
    return attached[1]
  end
  return get_clients({ name = M.config.name })[1]
end

--- The last pack list the server reported for the client of `bufnr` (a list of tables with
--- name, version, state, reason, triggeredBy, signed).
function M.packs(bufnr)
  local client = M.client(bufnr)
  if not client then
    return {}
  end
  return packs_by_client[client.id] or {}
end

--- Statusline component: "Packs: fastapi ✓ pydantic …"; empty when nothing is active.
function M.statusline(bufnr)
  local parts = {}
  for _, p in ipairs(M.packs(bufnr)) do
    if p.state ~= "inactive" then
      table.insert(parts, p.name .. " " .. (MARKS[p.state] or "?"))
    end
  end
  if #parts == 0 then
    return ""
  end
  return M.config.statusline_prefix .. table.concat(parts, " ")
end

local function describe(p)
  local line = string.format("%s %s  %s", p.name, p.version or "", p.state or "?")
  if p.signed == false then
    line = line .. "  (unsigned)"
  end
  if p.reason and p.reason ~= vim.NIL and p.reason ~= "" then
    line = line .. "  " .. p.reason
  end
  if type(p.triggeredBy) == "table" and #p.triggeredBy > 0 then
    local names = {}
    for _, uri in ipairs(p.triggeredBy) do
      table.insert(names, vim.fn.fnamemodify(vim.uri_to_fname(uri), ":t"))
    end
    line = line .. "  ← " .. table.concat(names, ", ")
  end
  return line
end
M.describe = describe

---------------------------------------------------------------------------------------------
-- requests
---------------------------------------------------------------------------------------------

local function need_client()
  local client = M.client()
  if not client then
    notify("the Remora server is not running (open a Python/JS/TS file first)", vim.log.levels.WARN)
  end
  return client
end

--- Asks the server for its packs; `callback(packs)` receives the list (nil on error).
function M.list_packs(callback)
  local client = need_client()
  if not client then
    return
  end
  client_request(client, LIST_PACKS, nil, function(err, result)
    if err then
      notify("remora/listPacks failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return callback and callback(nil)
    end
    set_packs(client.id, (result or {}).packs)
    if callback then
      callback(packs_by_client[client.id])
    end
  end, vim.api.nvim_get_current_buf())
end

--- Runs remora.activatePack / remora.deactivatePack for `name`.
function M.execute(command, name, callback)
  local client = need_client()
  if not client then
    return
  end
  if not name or name == "" then
    notify(command .. " needs a pack name", vim.log.levels.ERROR)
    return
  end
  local params = { command = command, arguments = { name } }
  client_request(client, "workspace/executeCommand", params, function(err, result)
    if err then
      notify(command .. " " .. name .. " failed: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    else
      if type(result) == "table" and type(result.packs) == "table" then
        set_packs(client.id, result.packs)
      end
      local msg = type(result) == "table" and type(result.message) == "string" and result.message
      notify(msg or (command .. " " .. name))
    end
    if callback then
      callback(err, result)
    end
  end, vim.api.nvim_get_current_buf())
end

function M.activate(name, callback)
  M.execute(ACTIVATE, name, callback)
end

function M.deactivate(name, callback)
  M.execute(DEACTIVATE, name, callback)
end

--- Sends new settings to every running Remora server.
function M.set_settings(settings)
  M.config.settings = vim.tbl_deep_extend("force", M.config.settings or {}, settings or {})
  for _, client in ipairs(get_clients({ name = M.config.name })) do
    client.config.settings = { remora = as_object(M.config.settings) }
    client_notify(client, "workspace/didChangeConfiguration", { settings = client.config.settings })
  end
end

---------------------------------------------------------------------------------------------
-- starting the server
---------------------------------------------------------------------------------------------

local function client_config(root)
  local cfg = M.config
  return {
    name = cfg.name,
    cmd = cfg.cmd,
    cmd_env = cfg.cmd_env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = as_object(cfg.settings),
    -- Neovim sends these with workspace/didChangeConfiguration right after initialize.
    settings = { remora = as_object(cfg.settings) },
    capabilities = cfg.capabilities or vim.lsp.protocol.make_client_capabilities(),
    handlers = { [PACK_STATUS] = on_pack_status },
    on_attach = cfg.on_attach,
    on_exit = function(_, _, client_id)
      packs_by_client[client_id] = nil
      for r, id in pairs(legacy_clients) do
        if id == client_id then
          legacy_clients[r] = nil
        end
      end
      vim.schedule(function()
        pcall(vim.cmd, "redrawstatus")
      end)
    end,
  }
end

--- Starts (or reuses) the server for `bufnr` and attaches it. Returns the client id.
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  local root = M.find_root(vim.api.nvim_buf_get_name(bufnr))
  if vim.lsp.start then
    return vim.lsp.start(client_config(root), { bufnr = bufnr })
  end
  local id = legacy_clients[root]
  if not id or not vim.lsp.get_client_by_id(id) then
    id = vim.lsp.start_client(client_config(root))
    legacy_clients[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

local function pack_names()
  local names, seen = {}, {}
  for _, list in pairs(packs_by_client) do
    for _, p in ipairs(list) do
      if not seen[p.name] then
        seen[p.name] = true
        table.insert(names, p.name)
      end
    end
  end
  if #names == 0 then
    -- Nothing cached yet: ask the server, briefly.
    local bufnr = vim.api.nvim_get_current_buf()
    local ok, responses = pcall(vim.lsp.buf_request_sync, bufnr, LIST_PACKS, nil, 500)
    for _, response in pairs(ok and responses or {}) do
      for _, p in ipairs(((response or {}).result or {}).packs or {}) do
        if type(p.name) == "string" and not seen[p.name] then
          seen[p.name] = true
          table.insert(names, p.name)
        end
      end
    end
  end
  table.sort(names)
  return names
end

function M.complete_pack(arglead)
  local out = {}
  for _, name in ipairs(pack_names()) do
    if name:sub(1, #arglead) == arglead then
      table.insert(out, name)
    end
  end
  return out
end

local function create_commands()
  local complete = "customlist,v:lua.require'remora'.complete_pack"
  vim.api.nvim_create_user_command("RemoraPacks", function()
    M.list_packs(function(list)
      if not list then
        return
      end
      if #list == 0 then
        notify("no Language Packs installed")
        return
      end
      local lines = { "Remora Language Packs:" }
      for _, p in ipairs(list) do
        table.insert(lines, "  " .. describe(p))
      end
      notify(table.concat(lines, "\n"))
    end)
  end, { desc = "List Remora Language Packs and their state" })
  vim.api.nvim_create_user_command("RemoraActivate", function(o)
    M.activate(o.args)
  end, { nargs = 1, complete = complete, desc = "Activate a Remora Language Pack" })
  vim.api.nvim_create_user_command("RemoraDeactivate", function(o)
    M.deactivate(o.args)
  end, { nargs = 1, complete = complete, desc = "Deactivate a Remora Language Pack" })
end

--- Configures Remora and starts it for matching buffers (already open ones included).
function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if opts and opts.cmd then
    M.config.cmd = opts.cmd -- lists replace, they do not merge
  end
  if opts and opts.filetypes then
    M.config.filetypes = opts.filetypes
  end
  if opts and opts.root_markers then
    M.config.root_markers = opts.root_markers
  end
  create_commands()
  local group = vim.api.nvim_create_augroup("remora", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

return M
