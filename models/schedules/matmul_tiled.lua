-- matmul_tiled.lua — a register-tiled schedule for matmul stages on CPUs
-- with wide vector units (AVX2, AVX-512).
--
--   C[.., i, j] = sum(k) A[.., i, k] * B[.., k, j]      (row-major: j is
--   the contiguous axis of B and C)
--
-- The default nest runs k innermost: one multiply-add per load of B, B read
-- down a column (stride N). This schedule computes C in tiles of ROWS rows
-- by COLS columns held in a local buffer (registers, once the tile's loops
-- are unrolled), walks k outside the tile so that each k step loads one
-- vector of B per column group and broadcasts one A value per row, and runs
-- the tiles in parallel, column panels outermost so that the panel of B a
-- tile reads stays in cache while the row blocks go by:
--
--   parallel  (batch.., j_o, i_o) fused      tiles
--     k_o                                     KC-deep panels of B
--       k_i                                   one rank-1 update of the tile
--         i_i   unrolled                      ROWS rows
--           j_m   unrolled                    COLS / LANES vectors
--             j_i   vectorized                LANES columns
--
-- Factors are chosen to divide the extents, so no loop needs a bound
-- check; an axis with no fitting factor is left whole.
--
-- Load it with tune_lua_schedules_load (autotune/lua_schedule.h); the API
-- and the objects are described in docs/lua-schedules.md.

local LANES = {16, 8}           -- f32 lanes of a 512-bit vector, or a 256-bit one
local ROWS = {6, 4, 3, 2}       -- rows per tile, best first
local VECTORS = {4, 2, 1}       -- vectors per tile row, best first
local KC = {256, 128, 64, 32}   -- depth of a panel of B, best first
local MIN_PARALLEL = 1 << 16    -- multiply-adds below which threads cost more than they give

-- The first candidate that divides n, or nil.
local function divisor(n, candidates)
  for _, c in ipairs(candidates) do
    if c <= n and n % c == 0 then return c end
  end
  return nil
end

-- Appends the non-nil arguments to list t.
local function append(t, ...)
  for idx = 1, select('#', ...) do
    local ax = select(idx, ...)
    if ax then t[#t + 1] = ax end
  end
  return t
end

function schedule.matmul(s)
  local spatial, reduction = s.axes, s.raxes
  if #spatial < 2 or #reduction ~= 1 then return end   -- not the plain form: keep the default
  local i, j, k = spatial[#spatial - 1], spatial[#spatial], reduction[1]

  -- columns: COLS = vectors * lanes, the innermost `lanes` vectorized
  local jo, jm, ji
  local lanes = divisor(j.extent, LANES)
  local vectors = lanes and divisor(j.extent // lanes, VECTORS)
  if vectors and vectors > 1 then
    jo, jm, ji = s:split(j, vectors, lanes)
  elseif vectors then
    jo, ji = s:split(j, lanes)
  end

  -- rows
  local io, ii
  local rows = divisor(i.extent, ROWS)
  if rows then io, ii = s:split(i, rows) end

  -- reduction panels
  local ko, ki
  local kc = divisor(k.extent, KC)
  if kc and kc < k.extent then ko, ki = s:split(k, kc) end

  if not (ii or ji or ko) then return end   -- nothing fits: the default nest

  -- tiles outside (batch axes first, then column panels), the tile's own
  -- loops inside
  local outer = {}
  for n = 1, #spatial - 2 do outer[n] = spatial[n] end
  append(outer, jo or j, io or i)
  local order = append({}, table.unpack(outer))
  s:reorder(append(order, ko, ki or k, ii, jm, ji))

  -- with enough work, one parallel loop over all tiles
  local work = k.extent
  for _, ax in ipairs(spatial) do work = work * ax.extent end
  local parallel = work >= MIN_PARALLEL
  local tiles = outer[#outer]
  if parallel and #outer > 1 then tiles = s:fuse(outer) end

  -- accumulate each tile locally, written back once per tile
  if ii or ji then s:cache_write('local', tiles) end

  if ii then s:unroll(ii) end
  if jm then s:unroll(jm) end
  if ji then s:vectorize(ji) end
  if parallel then s:parallel(tiles) end
end
