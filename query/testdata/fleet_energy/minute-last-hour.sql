-- minute-last-hour: [2026-06-20T11:07:00Z, 2026-06-20T12:07:00Z), until 2026-06-20T12:04:00Z, zeros last true
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, if(ts = toDateTime({min_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum_1m FINAL WHERE ts IN (toDateTime({min_from:Int64}, 'UTC'), toDateTime({min_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)}))) GROUP BY system_id) WHERE e > 0 ORDER BY e DESC, system_id DESC LIMIT {lim:UInt32}
-- nonzero
SELECT bitmapToArray(groupBitmapState(system_id)) FROM (SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, if(ts = toDateTime({min_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum_1m FINAL WHERE ts IN (toDateTime({min_from:Int64}, 'UTC'), toDateTime({min_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)}))) GROUP BY system_id) WHERE e > 0)
-- args
ids = [3 5 8]
lim = 51
min_from = 1781953620
min_to = 1781957040
