package main

import (
	"errors"

	"github.com/pgsink/pgsink/config"
)

// errTransactionNotWired is run's answer to apply.consistency: transaction
// until the whole path (staging in the partitions' batches, the resolver
// on the transaction topic's owner) runs in the connector: applying such a
// configuration per partition would break the promise it asks for.
var errTransactionNotWired = errors.New("apply.consistency: transaction is not available in run yet: " +
	"the staging and the resolver exist (docs/transactions.md) but are not wired into the connector; " +
	"use apply.consistency: partition (the default), where a reader may see part of a source transaction")

// refuseUnwired returns why run must not start with cfg, or nil.
func refuseUnwired(cfg *config.Config) error {
	if cfg.Apply.Consistency == config.ConsistencyTransaction {
		return errTransactionNotWired
	}
	return nil
}
