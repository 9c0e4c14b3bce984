SELECT pg_advisory_xact_lock(hashtext('pgsink key moves'), hashtext($1))
