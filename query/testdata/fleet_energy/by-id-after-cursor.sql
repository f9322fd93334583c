-- by-id-after-cursor: [2026-06-18T00:00:00Z, 2026-06-20T00:00:00Z), until 2026-06-20T00:00:00Z, zeros last false
-- page
SELECT system_id, e FROM (SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (SELECT arrayJoin({ids:Array(UInt32)}) AS system_id, toInt64(0) AS wh UNION ALL SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND system_id IN (SELECT arrayJoin({ids:Array(UInt32)}))) GROUP BY system_id) WHERE system_id > {cid:UInt32} ORDER BY system_id ASC LIMIT {lim:UInt32}
-- nonzero
(none)
-- args
ids = [3 5 8]
lim = 51
cum_from = 1781740800
cum_to = 1781913600
cid = 5
ce = 0
