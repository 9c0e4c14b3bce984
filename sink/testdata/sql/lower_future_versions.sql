UPDATE "App ""Prod"""."Order; DROP TABLE x" SET "commit""; --" = $1, "_pgsink_lsn" = $1 WHERE "commit""; --" > $1
