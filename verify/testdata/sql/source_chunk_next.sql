WITH c AS MATERIALIZED (SELECT "Tenant""", "id", ROW("Tenant""", "id", "note")::text AS r FROM "App ""Prod"""."Order; DROP TABLE x" WHERE ("Tenant""", "id") > ($2, $3) ORDER BY "Tenant""", "id" LIMIT $1)
SELECT (SELECT count(*) FROM c), (SELECT md5(string_agg(r, E'\n' ORDER BY "Tenant""", "id")) FROM c), l.*
  FROM (SELECT "Tenant""", "id" FROM c ORDER BY "Tenant""" DESC, "id" DESC LIMIT 1) l
