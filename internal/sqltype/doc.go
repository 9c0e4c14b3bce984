// Package sqltype parses, checks and renders the PostgreSQL column types
// that records ask for (schema.create, schema.evolve). A rendered type is
// made of fixed spellings, one quoted identifier and range-checked integers
// only, so no text of a record reaches DDL as SQL. It is a leaf, for the
// decoder (which maps schemas to types) and the sink (which writes DDL).
package sqltype
