-- last-30-days-to-now: [2026-05-21T12:07:00Z, 2026-06-20T12:07:00Z), until 2026-06-20T12:04:00Z, zeros last true
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1h FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f2:Int64}, 'UTC') AND ts < toDateTime({t2:Int64}, 'UTC')) OR (ts >= toDateTime({f4:Int64}, 'UTC') AND ts < toDateTime({t4:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_15m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f6:Int64}, 'UTC') AND ts < toDateTime({t6:Int64}, 'UTC')) OR (ts >= toDateTime({f8:Int64}, 'UTC') AND ts < toDateTime({t8:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f10:Int64}, 'UTC') AND ts < toDateTime({t10:Int64}, 'UTC')) OR (ts >= toDateTime({f12:Int64}, 'UTC') AND ts < toDateTime({t12:Int64}, 'UTC')))) GROUP BY system_id) WHERE e > 0 ORDER BY e DESC, system_id DESC LIMIT {lim:UInt32}
-- nonzero
SELECT bitmapToArray(groupBitmapState(system_id)) FROM (SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1h FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f2:Int64}, 'UTC') AND ts < toDateTime({t2:Int64}, 'UTC')) OR (ts >= toDateTime({f4:Int64}, 'UTC') AND ts < toDateTime({t4:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_15m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f6:Int64}, 'UTC') AND ts < toDateTime({t6:Int64}, 'UTC')) OR (ts >= toDateTime({f8:Int64}, 'UTC') AND ts < toDateTime({t8:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f10:Int64}, 'UTC') AND ts < toDateTime({t10:Int64}, 'UTC')) OR (ts >= toDateTime({f12:Int64}, 'UTC') AND ts < toDateTime({t12:Int64}, 'UTC')))) GROUP BY system_id) WHERE e > 0)
-- args
ids = [3 5 8]
lim = 51
f2 = 1779368400
t2 = 1779408000
f4 = 1781913600
t4 = 1781953200
f6 = 1779365700
t6 = 1779368400
f8 = 1781953200
t8 = 1781956800
f10 = 1779365220
t10 = 1779365700
f12 = 1781956800
t12 = 1781957040
cum_from = 1779408000
cum_to = 1781913600
