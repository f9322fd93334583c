CREATE TABLE IF NOT EXISTS `fleetscope`.`schema_migrations` ON CLUSTER `solar`
(
	version    UInt32,
	name       String,
	applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/{database}/schema_migrations', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS `fleetscope`.`readings_local` ON CLUSTER `solar`
(
	system_id  UInt32 CODEC(Delta, ZSTD(1)),
	gateway_id UInt32 CODEC(T64, ZSTD(1)),
	panel      LowCardinality(String) CODEC(ZSTD(1)),
	ts         DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
	vin        UInt16 CODEC(T64, ZSTD(1)),
	iin        UInt16 CODEC(T64, ZSTD(1)),
	pin        UInt16 CODEC(T64, ZSTD(1)),
	vout       UInt16 CODEC(T64, ZSTD(1)),
	temp       Int16 CODEC(T64, ZSTD(1)),
	rssi       UInt8 CODEC(T64, ZSTD(1)),
	wh         UInt32 CODEC(T64, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/readings_local', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, panel, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`readings` ON CLUSTER `solar` AS `fleetscope`.`readings_local`
ENGINE = Distributed('solar', 'fleetscope', 'readings_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_live_local` ON CLUSTER `solar`
(
	system_id    UInt32,
	last_ts      DateTime64(3, 'UTC'),
	day          Date,
	energy_today UInt64,
	panels       Array(LowCardinality(String)),
	panel_pin    Array(UInt16),
	panel_ts     Array(DateTime64(3, 'UTC')),
	lsn          UInt64,
	updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_live_local', '{replica}', updated_at)
ORDER BY system_id;

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_live` ON CLUSTER `solar` AS `fleetscope`.`system_live_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_live_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`rollup_dirty` ON CLUSTER `solar`
(
	ts        DateTime('UTC'),
	system_id UInt32,
	marked_at DateTime64(3, 'UTC'),
	done      UInt8 DEFAULT 0
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/{database}/rollup_dirty', '{replica}', marked_at)
ORDER BY (ts, system_id)
TTL toDateTime(marked_at) + INTERVAL 7 DAY;

CREATE TABLE IF NOT EXISTS `fleetscope`.`rollup_watermarks` ON CLUSTER `solar`
(
	level      LowCardinality(String),
	watermark  DateTime('UTC'),
	updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/{database}/rollup_watermarks', '{replica}', updated_at)
ORDER BY level;

CREATE TABLE IF NOT EXISTS `fleetscope`.`ingest_dedup` ON CLUSTER `solar`
(
	gateway_id UInt32,
	max_seq    UInt64,
	seqs       String,
	updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/{database}/ingest_dedup', '{replica}', updated_at)
ORDER BY gateway_id;

CREATE TABLE IF NOT EXISTS `fleetscope`.`systems` ON CLUSTER `solar`
(
	id         UInt32,
	guid       String,
	name       String,
	address    String,
	timezone   LowCardinality(String),
	monitored  Bool,
	org_id     UInt32,
	created_at DateTime64(3, 'UTC'),
	deleted    Bool,
	version    UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/{database}/systems', '{replica}', version)
ORDER BY id;

CREATE TABLE IF NOT EXISTS `fleetscope`.`gateways` ON CLUSTER `solar`
(
	id         UInt32,
	system_id  UInt32,
	serial     String,
	key_hash   FixedString(32),
	created_at DateTime64(3, 'UTC'),
	deleted    Bool,
	version    UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/global/{database}/gateways', '{replica}', version)
ORDER BY id;

CREATE TABLE IF NOT EXISTS `fleetscope`.`panels_local` ON CLUSTER `solar`
(
	system_id  UInt32,
	panel      String,
	gateway_id UInt32,
	first_seen DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/panels_local', '{replica}')
ORDER BY (system_id, panel);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panels` ON CLUSTER `solar` AS `fleetscope`.`panels_local`
ENGINE = Distributed('solar', 'fleetscope', 'panels_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`acl_events` ON CLUSTER `solar`
(
	hlc       UInt64,
	node      UInt16,
	kind      LowCardinality(String),
	actor     UInt32,
	system_id UInt32,
	event     String CODEC(ZSTD(3)),
	at        DateTime64(3, 'UTC'),
	ins       DateTime64(3, 'UTC') DEFAULT now64(3),
	INDEX ins_minmax ins TYPE minmax GRANULARITY 1,
	INDEX system_bloom system_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/global/{database}/acl_events', '{replica}')
ORDER BY (hlc, node);

CREATE TABLE IF NOT EXISTS `fleetscope`.`outbox` ON CLUSTER `solar`
(
	id         UUID,
	to         String,
	subject    String,
	body       String,
	created_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/global/{database}/outbox', '{replica}')
ORDER BY created_at
TTL toDateTime(created_at) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS `fleetscope`.`acl_snapshots` ON CLUSTER `solar`
(
	hlc        UInt64,
	node       UInt32,
	events     UInt64,
	state      String CODEC(ZSTD(3)),
	created_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/global/{database}/acl_snapshots', '{replica}')
ORDER BY (hlc, node);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_1m_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	panel       LowCardinality(String),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	vin_sum     UInt64 CODEC(T64, ZSTD(1)),
	iin_sum     UInt64 CODEC(T64, ZSTD(1)),
	vout_sum    UInt64 CODEC(T64, ZSTD(1)),
	temp_sum    Int64 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/panel_rollup_1m_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, panel, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_1m` ON CLUSTER `solar` AS `fleetscope`.`panel_rollup_1m_local`
ENGINE = Distributed('solar', 'fleetscope', 'panel_rollup_1m_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_1m_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	panels      UInt16 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_rollup_1m_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_1m` ON CLUSTER `solar` AS `fleetscope`.`system_rollup_1m_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_rollup_1m_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_15m_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	panel       LowCardinality(String),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	vin_sum     UInt64 CODEC(T64, ZSTD(1)),
	iin_sum     UInt64 CODEC(T64, ZSTD(1)),
	vout_sum    UInt64 CODEC(T64, ZSTD(1)),
	temp_sum    Int64 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/panel_rollup_15m_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, panel, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_15m` ON CLUSTER `solar` AS `fleetscope`.`panel_rollup_15m_local`
ENGINE = Distributed('solar', 'fleetscope', 'panel_rollup_15m_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_15m_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	panels      UInt16 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_rollup_15m_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_15m` ON CLUSTER `solar` AS `fleetscope`.`system_rollup_15m_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_rollup_15m_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_1h_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	panel       LowCardinality(String),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	vin_sum     UInt64 CODEC(T64, ZSTD(1)),
	iin_sum     UInt64 CODEC(T64, ZSTD(1)),
	vout_sum    UInt64 CODEC(T64, ZSTD(1)),
	temp_sum    Int64 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/panel_rollup_1h_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, panel, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_1h` ON CLUSTER `solar` AS `fleetscope`.`panel_rollup_1h_local`
ENGINE = Distributed('solar', 'fleetscope', 'panel_rollup_1h_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_1h_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	panels      UInt16 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_rollup_1h_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_1h` ON CLUSTER `solar` AS `fleetscope`.`system_rollup_1h_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_rollup_1h_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_1d_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	panel       LowCardinality(String),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	vin_sum     UInt64 CODEC(T64, ZSTD(1)),
	iin_sum     UInt64 CODEC(T64, ZSTD(1)),
	vout_sum    UInt64 CODEC(T64, ZSTD(1)),
	temp_sum    Int64 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/panel_rollup_1d_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, panel, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`panel_rollup_1d` ON CLUSTER `solar` AS `fleetscope`.`panel_rollup_1d_local`
ENGINE = Distributed('solar', 'fleetscope', 'panel_rollup_1d_local', system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_1d_local` ON CLUSTER `solar`
(
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	panels      UInt16 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_rollup_1d_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, ts);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_rollup_1d` ON CLUSTER `solar` AS `fleetscope`.`system_rollup_1d_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_rollup_1d_local', system_id);

DROP TABLE IF EXISTS `fleetscope`.`acl_snapshots` ON CLUSTER `solar` SYNC;

CREATE TABLE IF NOT EXISTS `fleetscope`.`acl_snapshots` ON CLUSTER `solar`
(
	hlc        UInt64,
	node       UInt16,
	chunk      UInt32,
	covers     DateTime64(3, 'UTC'),
	events     UInt64,
	data       String CODEC(NONE),
	created_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/global/{database}/acl_snapshots', '{replica}')
ORDER BY (hlc, node, chunk);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_energy_cum_local` ON CLUSTER `solar`
(
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_energy_cum_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_energy_cum` ON CLUSTER `solar` AS `fleetscope`.`system_energy_cum_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_energy_cum_local', system_id);

DROP TABLE IF EXISTS `fleetscope`.`system_energy_cum` ON CLUSTER `solar` SYNC;

DROP TABLE IF EXISTS `fleetscope`.`system_energy_cum_local` ON CLUSTER `solar` SYNC;

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_energy_cum_local` ON CLUSTER `solar`
(
	ts            DateTime('UTC') CODEC(Delta, LZ4),
	system_id     UInt32 CODEC(Delta, LZ4),
	wh            UInt64 CODEC(T64, LZ4),
	wh_7d_before  UInt64 CODEC(T64, LZ4),
	wh_30d_before UInt64 CODEC(T64, LZ4),
	computed_at   DateTime64(3, 'UTC') CODEC(Delta, LZ4)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_energy_cum_local', '{replica}', computed_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_energy_cum` ON CLUSTER `solar` AS `fleetscope`.`system_energy_cum_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_energy_cum_local', system_id);

ALTER TABLE `fleetscope`.`readings_local` ON CLUSTER `solar` MODIFY SETTING merge_selector_base = 10;

CREATE TABLE IF NOT EXISTS `fleetscope`.`readings_v6_local` ON CLUSTER `solar`
(
	system_id  UInt32 CODEC(Delta, ZSTD(1)),
	gateway_id UInt32 CODEC(T64, ZSTD(1)),
	panel      LowCardinality(String) CODEC(ZSTD(1)),
	ts         DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
	vin        UInt16 CODEC(T64, ZSTD(1)),
	iin        UInt16 CODEC(T64, ZSTD(1)),
	pin        UInt16 CODEC(T64, ZSTD(1)),
	vout       UInt16 CODEC(T64, ZSTD(1)),
	temp       Int16 CODEC(T64, ZSTD(1)),
	rssi       UInt8 CODEC(T64, ZSTD(1)),
	wh         UInt32 CODEC(T64, ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/readings_v6_local', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (system_id, panel, ts)
SETTINGS merge_selector_base = 10;

RENAME TABLE `fleetscope`.`readings_local` TO `fleetscope`.`readings_v6_old_local`, `fleetscope`.`readings_v6_local` TO `fleetscope`.`readings_local` ON CLUSTER `solar`;

ALTER TABLE `fleetscope`.`readings_local` ON CLUSTER `solar` ATTACH PARTITION ALL FROM `fleetscope`.`readings_v6_old_local`;

DROP TABLE IF EXISTS `fleetscope`.`readings_v6_old_local` ON CLUSTER `solar` SYNC;

CREATE TABLE IF NOT EXISTS `fleetscope`.`id_blocks` ON CLUSTER `solar`
(
	what  LowCardinality(String),
	block UInt32,
	node  UInt16,
	claim String,
	at    DateTime64(3, 'UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/global/{database}/id_blocks', '{replica}')
ORDER BY (what, block);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_energy_cum_1m_local` ON CLUSTER `solar`
(
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/system_energy_cum_1m_local', '{replica}', computed_at)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, system_id);

CREATE TABLE IF NOT EXISTS `fleetscope`.`system_energy_cum_1m` ON CLUSTER `solar` AS `fleetscope`.`system_energy_cum_1m_local`
ENGINE = Distributed('solar', 'fleetscope', 'system_energy_cum_1m_local', system_id);

ALTER TABLE `fleetscope`.`readings_local` ON CLUSTER `solar` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

ALTER TABLE `fleetscope`.`system_energy_cum_1m_local` ON CLUSTER `solar` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

ALTER TABLE `fleetscope`.`panel_rollup_1m_local` ON CLUSTER `solar` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

ALTER TABLE `fleetscope`.`system_rollup_1m_local` ON CLUSTER `solar` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

ALTER TABLE `fleetscope`.`panel_rollup_15m_local` ON CLUSTER `solar` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

ALTER TABLE `fleetscope`.`system_rollup_15m_local` ON CLUSTER `solar` MODIFY SETTING ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1;

ALTER TABLE `fleetscope`.`readings_local` ON CLUSTER `solar` MODIFY TTL toDateTime(ts) + toIntervalSecond(34560000);

ALTER TABLE `fleetscope`.`system_energy_cum_1m_local` ON CLUSTER `solar` MODIFY TTL ts + toIntervalSecond(34560000);

ALTER TABLE `fleetscope`.`panel_rollup_1m_local` ON CLUSTER `solar` MODIFY TTL ts + toIntervalSecond(34560000);

ALTER TABLE `fleetscope`.`system_rollup_1m_local` ON CLUSTER `solar` MODIFY TTL ts + toIntervalSecond(34560000);

ALTER TABLE `fleetscope`.`panel_rollup_15m_local` ON CLUSTER `solar` MODIFY TTL ts + toIntervalSecond(34560000);

ALTER TABLE `fleetscope`.`system_rollup_15m_local` ON CLUSTER `solar` MODIFY TTL ts + toIntervalSecond(34560000);
