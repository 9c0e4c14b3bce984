DROP TABLE IF EXISTS "App ""Prod"""."Order; DROP TABLE x__pgsink_old"
