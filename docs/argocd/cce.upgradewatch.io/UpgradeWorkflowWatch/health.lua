-- Argo CD health check for cce.upgradewatch.io/UpgradeWorkflowWatch.
--   Healthy      the upgrade succeeded (condition Ready is True; it stays True when
--                CCE can no longer be read afterwards, and the message says so)
--   Degraded     it needs a person (Stalled is True): a failed task, a cancelled upgrade,
--                or a permanent error such as missing access or a workflow that is gone
--   Suspended    spec.suspend is true
--   Progressing  anything else: running, not observed yet, or retrying after an error
-- Status and conditions written for an older generation of the spec do not count.
local hs = {}

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "polling CCE is suspended (spec.suspend is true)"
  return hs
end

local status = obj.status
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe the current spec"
  return hs
end

-- The condition of this type, unless it was written for an older generation.
local function condition(type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      if generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration < generation then
        return nil
      end
      return c
    end
  end
  return nil
end

-- "phase Running, 1/4 tasks done, current task Cluster, target v1.29.13-r0"
local function summary()
  local parts = {}
  if status.phase ~= nil then
    table.insert(parts, "phase " .. status.phase)
  end
  if status.progress ~= nil then
    table.insert(parts, status.progress .. " tasks done")
  end
  if status.currentTask ~= nil then
    table.insert(parts, "current task " .. status.currentTask)
  end
  if status.targetVersion ~= nil then
    table.insert(parts, "target " .. status.targetVersion)
  end
  return table.concat(parts, ", ")
end

local function explain(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local synced = condition("Synced")
local function not_synced()
  if synced ~= nil and synced.status == "False" and synced.reason ~= "Suspended" then
    return explain(synced)
  end
  return nil
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = summary()
  local why = not_synced()
  if why ~= nil then
    hs.message = hs.message .. "; CCE no longer read: " .. why
  end
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled)
  local where = summary()
  if where ~= "" then
    hs.message = hs.message .. " (" .. where .. ")"
  end
  return hs
end

hs.status = "Progressing"
hs.message = summary()
local why = not_synced()
if why ~= nil then
  if hs.message ~= "" then
    hs.message = hs.message .. "; "
  end
  hs.message = hs.message .. "CCE not in sync, retrying: " .. why
end
if hs.message == "" then
  hs.message = "waiting for the first answer from CCE"
end
return hs
