CREATE TABLE "App ""Prod"""."Order; DROP TABLE x__pgsink_""shadow" (LIKE "App ""Prod"""."Order; DROP TABLE x" INCLUDING ALL)
