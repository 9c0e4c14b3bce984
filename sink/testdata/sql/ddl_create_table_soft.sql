CREATE TABLE IF NOT EXISTS "App ""Prod"""."Order; DROP TABLE x" (
    "Order Id" integer NOT NULL,
    "region; DROP TABLE x" text NOT NULL,
    "amount" numeric(12,2),
    "Note""); DROP TABLE x; --" character varying(20),
    "at" timestamp(3) with time zone,
    "mood" "mood",
    "tags" text[],
    "bits" bit varying,
    "_pgsink_commit_lsn" bigint,
    "_pgsink_lsn" bigint,
    "deleted""; --" boolean NOT NULL DEFAULT false,
    PRIMARY KEY ("Order Id", "region; DROP TABLE x")
)
