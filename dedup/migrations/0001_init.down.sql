DROP TABLE dead_letters;
DROP TABLE outbox_events;
DROP TABLE tombstones;
DROP TABLE offsets;
