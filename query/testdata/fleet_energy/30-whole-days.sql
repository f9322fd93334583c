-- 30-whole-days: [2026-05-21T00:00:00Z, 2026-06-20T00:00:00Z), until 2026-06-20T00:00:00Z, zeros last true
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(wh, 0)) AS e FROM (SELECT system_id, toInt64(wh) - toInt64(wh_30d_before) AS wh FROM system_energy_cum FINAL WHERE ts = toDateTime({cum_to:Int64}, 'UTC') AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})))) WHERE e > 0 ORDER BY e DESC, system_id DESC LIMIT {lim:UInt32}
-- nonzero
SELECT bitmapToArray(groupBitmapState(system_id)) FROM (SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(wh, 0)) AS e FROM (SELECT system_id, toInt64(wh) - toInt64(wh_30d_before) AS wh FROM system_energy_cum FINAL WHERE ts = toDateTime({cum_to:Int64}, 'UTC') AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})))) WHERE e > 0)
-- args
ids = [3 5 8]
lim = 51
cum_from = 1779321600
cum_to = 1781913600
