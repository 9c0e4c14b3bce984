SELECT c.relkind::text,
       pg_has_role(c.relowner, 'USAGE'),
       array(SELECT DISTINCT 'view or rule ' || r.ev_class::regclass::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
              WHERE d.refobjid = c.oid AND d.classid = 'pg_rewrite'::regclass AND r.ev_class <> c.oid)
    || array(SELECT 'foreign key ' || conname || ' of ' || conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND (confrelid = c.oid OR conrelid = c.oid))
    || array(SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal)
    || array(SELECT 'row-level security' WHERE c.relrowsecurity)
    || array(SELECT 'column grants on ' || attname FROM pg_attribute WHERE attrelid = c.oid AND attacl IS NOT NULL)
    || array(SELECT 'inheritance with ' || inhrelid::regclass::text FROM pg_inherits WHERE inhparent = c.oid OR inhrelid = c.oid)
  FROM pg_class c WHERE c.oid = $1::regclass
