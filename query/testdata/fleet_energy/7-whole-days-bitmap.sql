-- 7-whole-days-bitmap: [2026-06-13T00:00:00Z, 2026-06-20T00:00:00Z), until 2026-06-20T00:00:00Z, zeros last true
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(wh, 0)) AS e FROM (SELECT system_id, toInt64(wh) - toInt64(wh_7d_before) AS wh FROM system_energy_cum FINAL WHERE ts = toDateTime({cum_to:Int64}, 'UTC') AND bitmapContains(CAST(base64Decode({ids:String}) AS AggregateFunction(groupBitmap, UInt32)), system_id))) WHERE e > 0 ORDER BY e DESC, system_id DESC LIMIT {lim:UInt32}
-- nonzero
SELECT bitmapToArray(groupBitmapState(system_id)) FROM (SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(wh, 0)) AS e FROM (SELECT system_id, toInt64(wh) - toInt64(wh_7d_before) AS wh FROM system_energy_cum FINAL WHERE ts = toDateTime({cum_to:Int64}, 'UTC') AND bitmapContains(CAST(base64Decode({ids:String}) AS AggregateFunction(groupBitmap, UInt32)), system_id))) WHERE e > 0)
-- args
ids = AQ87MAAAAQAAxgABAAEAxgA=
lim = 51
cum_from = 1781308800
cum_to = 1781913600
