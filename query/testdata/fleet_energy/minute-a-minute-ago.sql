-- minute-a-minute-ago: [2026-06-20T12:06:00Z, 2026-06-20T12:07:00Z), until 2026-06-20T12:06:00Z, zeros last true
-- page
(none)
-- nonzero
(none)
-- args
ids = [3 5 8]
lim = 51
