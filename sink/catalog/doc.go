// Package catalog reads what the sink needs to know of one target table from
// PostgreSQL's catalog (columns, types, keys, privileges) and checks a table's
// configuration against it.
//
// It must never change the database, and never put a name into SQL text: names
// are bound parameters, and oids identify the table after the first lookup (I8).
package catalog
