LOCK TABLE "App ""Prod"""."Order; DROP TABLE x" IN ACCESS EXCLUSIVE MODE;
ALTER TABLE "App ""Prod"""."Order; DROP TABLE x" RENAME TO "Order; DROP TABLE x__pgsink_old";
ALTER TABLE "App ""Prod"""."Order; DROP TABLE x__pgsink_""shadow" RENAME TO "Order; DROP TABLE x";
ALTER INDEX "App ""Prod"""."Order; DROP TABLE x_pkey" RENAME TO "pgsink_old_16384";
ALTER INDEX "App ""Prod"""."Order; DROP TABLE x__pgsink_""shadow_pkey" RENAME TO "Order; DROP TABLE x_pkey"
