// Package txlocal is the local path of apply.consistency: transaction
// (apply.transaction.local_partitions, docs/transactions.md): the records of
// source transactions that a data partition owned by the resolver's own
// process hands to that resolver in memory instead of staging them. It
// writes nothing and moves no offset: a record leaves it only once the
// resolver's transaction that applied it and moved its partition's offsets
// row committed, or with its partition when that one leaves the direct
// state (to stage it) or is revoked (the next owner reads it again).
package txlocal
