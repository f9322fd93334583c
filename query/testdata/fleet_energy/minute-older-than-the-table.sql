-- minute-older-than-the-table: [2026-03-22T12:07:00Z, 2026-06-20T12:07:00Z), until 2026-06-20T12:04:00Z, zeros last true
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_energy_cum_1m FINAL WHERE ts = toDateTime({min_to:Int64}, 'UTC') AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1h FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f2:Int64}, 'UTC') AND ts < toDateTime({t2:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_15m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f4:Int64}, 'UTC') AND ts < toDateTime({t4:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f6:Int64}, 'UTC') AND ts < toDateTime({t6:Int64}, 'UTC')))) GROUP BY system_id) WHERE e > 0 ORDER BY e DESC, system_id DESC LIMIT {lim:UInt32}
-- nonzero
SELECT bitmapToArray(groupBitmapState(system_id)) FROM (SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_energy_cum_1m FINAL WHERE ts = toDateTime({min_to:Int64}, 'UTC') AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1h FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f2:Int64}, 'UTC') AND ts < toDateTime({t2:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_15m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f4:Int64}, 'UTC') AND ts < toDateTime({t4:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f6:Int64}, 'UTC') AND ts < toDateTime({t6:Int64}, 'UTC')))) GROUP BY system_id) WHERE e > 0)
-- args
ids = [3 5 8]
lim = 51
f2 = 1774184400
t2 = 1774224000
f4 = 1774181700
t4 = 1774184400
f6 = 1774181220
t6 = 1774181700
cum_from = 1774224000
cum_to = 1776729600
min_from = 1776729600
min_to = 1781957040
