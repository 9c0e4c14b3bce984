SELECT coalesce(array_agg(coalesce(r.rolname, '')), '{}'), coalesce(array_agg(a.privilege_type), '{}'), coalesce(array_agg(a.is_grantable), '{}')
  FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
 WHERE c.oid = $1::regclass AND a.grantee <> c.relowner
