-- last-hour: [2026-06-20T11:07:00Z, 2026-06-20T12:07:00Z), until 2026-06-20T12:04:00Z, zeros last true
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, toInt64(wh) AS wh FROM system_rollup_15m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f2:Int64}, 'UTC') AND ts < toDateTime({t2:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f4:Int64}, 'UTC') AND ts < toDateTime({t4:Int64}, 'UTC')) OR (ts >= toDateTime({f6:Int64}, 'UTC') AND ts < toDateTime({t6:Int64}, 'UTC')))) GROUP BY system_id) WHERE e > 0 ORDER BY e DESC, system_id DESC LIMIT {lim:UInt32}
-- nonzero
SELECT bitmapToArray(groupBitmapState(system_id)) FROM (SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT system_id, toInt64(wh) AS wh FROM system_rollup_15m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f2:Int64}, 'UTC') AND ts < toDateTime({t2:Int64}, 'UTC'))) UNION ALL SELECT system_id, toInt64(wh) AS wh FROM system_rollup_1m FINAL WHERE system_id IN (SELECT arrayJoin({ids:Array(UInt32)})) AND ((ts >= toDateTime({f4:Int64}, 'UTC') AND ts < toDateTime({t4:Int64}, 'UTC')) OR (ts >= toDateTime({f6:Int64}, 'UTC') AND ts < toDateTime({t6:Int64}, 'UTC')))) GROUP BY system_id) WHERE e > 0)
-- args
ids = [3 5 8]
lim = 51
f2 = 1781954100
t2 = 1781956800
f4 = 1781953620
t4 = 1781954100
f6 = 1781956800
t6 = 1781957040
