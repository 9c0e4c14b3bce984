GRANT SELECT ON "App ""Prod"""."Order; DROP TABLE x__pgsink_""shadow" TO "reader""; DROP TABLE x; --";
GRANT UPDATE ON "App ""Prod"""."Order; DROP TABLE x__pgsink_""shadow" TO PUBLIC WITH GRANT OPTION
