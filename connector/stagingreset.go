package connector

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/txlocal"
	"go.uber.org/zap"
)

// A reset of the staging table (apply.transaction.staging: unlogged, and a
// crash of the target or a failover; docs/transactions.md "Unlogged
// staging"): the records a partition staged are gone while its offsets
// say they are staged. Each staging transaction checks the staging marker
// against the generation the partition synced to (dedup.QueueStagingCheck);
// on a mismatch, and at every claim and idle check (an idle partition
// whose staged records were lost would never stage again, and the
// resolver would wait for them), the partition syncs: the generation moves
// on if the marker says so, and a partition that staged under an older one
// rewinds to past what the resolver applied of it and stages again.
// Records of transactions applied already are refused by tx_resolved as
// they come again; the others replay under the version guard.

// stagingResets is what a data partition asks of the database about
// resets (stagingGenerations: dedup.Transactions on the pool).
type stagingResets interface {
	Sync(ctx context.Context) (gen int64, reset bool, err error)
	StagingOf(ctx context.Context, id dedup.PartitionID) (dedup.PartitionStaging, error)
	Rewind(ctx context.Context, c *dedup.Claim, gen, to int64) (moved bool, err error)
}

type stagingGenerations struct {
	tx   dedup.Transactions
	pool *pgxpool.Pool
	// within is dedup.RewindStaging's: the fault suite's apply audit
	// (internal/faults), nil otherwise.
	within func(id dedup.PartitionID) func(ctx context.Context, tx pgx.Tx, from, to int64) error
}

func (s stagingGenerations) Sync(ctx context.Context) (int64, bool, error) {
	return s.tx.SyncGeneration(ctx, s.pool)
}

func (s stagingGenerations) StagingOf(ctx context.Context, id dedup.PartitionID) (dedup.PartitionStaging, error) {
	return s.tx.StagingOf(ctx, s.pool, id)
}

func (s stagingGenerations) Rewind(ctx context.Context, c *dedup.Claim, gen, to int64) (bool, error) {
	var within func(context.Context, pgx.Tx, int64, int64) error
	if s.within != nil {
		within = s.within(c.PartitionID)
	}
	return s.tx.RewindStaging(ctx, s.pool, c, gen, to, within)
}

// syncStaging brings the partition to the current staging generation,
// rewinding it when it staged under an older one (what it staged may be
// lost). Run with no transaction of the partition in flight: the rewind
// is a compare-and-set of its committed position. A *dedup.FencedError
// means another owner has the partition; other errors leave the
// partition unsynced (its staging transactions fail their check) and are
// retried by the caller.
func (p *partition) syncStaging() error {
	if p.unsureRewind != nil {
		stored, err := p.positions.Read(p.ctx, p.id)
		if err != nil {
			return err
		}
		p.adoptRewind(stored)
	}
	gen, reset, err := p.resets.Sync(p.ctx)
	if err != nil {
		return err
	}
	if reset {
		p.log.Warn("the staging table was reset (a crash or restart of the target, or a failover): staged records may be lost; "+
			"every partition that staged under the previous generation reads again from past what the resolver applied of it",
			zap.Int64("generation", gen))
	}
	st, err := p.resets.StagingOf(p.ctx, p.id)
	if err != nil {
		return err
	}
	if st.Generation != 0 && st.Generation < gen {
		// The rewind moves the row under a new epoch: a direct partition
		// gives its row back first (rewound, it reads again anyway).
		p.dropDirect(txlocal.CauseReclaim)
		claim := p.claim
		from := claim.NextOffset
		moved, err := p.resets.Rewind(p.ctx, &claim, gen, st.RewindTo)
		var fenced *dedup.FencedError
		var positionMoved *dedup.PositionMovedError
		if err != nil && st.RewindTo < claim.NextOffset && !errors.As(err, &fenced) && !errors.As(err, &positionMoved) {
			// The rewind may have committed all the same: its epoch is
			// then the claim's + 1, which the next look at the row must
			// not take for another instance's claim.
			p.unsureRewind = &dedup.Claim{PartitionID: claim.PartitionID, Owner: claim.Owner, Epoch: claim.Epoch + 1, NextOffset: st.RewindTo}
		}
		if err != nil {
			return err
		}
		if moved {
			p.log.Warn("partition staged under an earlier generation of the staging table: rewound to stage its records again",
				zap.Int64("from", from), zap.Int64("to", claim.NextOffset), zap.Int64("generation", gen))
			p.rewound(claim)
		}
	}
	p.stagingGen = gen
	return nil
}

// rewound takes the claim a staging rewind left: the partition reads
// again from its position, and what it counted as staged is gone, counted
// anew from the database, as at a claim.
func (p *partition) rewound(claim dedup.Claim) {
	p.claim = claim
	p.staging = newStagingBound(p.staging.limit)
	p.seek(claim.NextOffset)
}

// adoptStoredRewind reads the partition's row to settle unsureRewind
// (adoptRewind), for a compare-and-set that found another epoch; false
// when there is no doubt to settle or the row cannot be read.
func (p *partition) adoptStoredRewind() bool {
	if p.unsureRewind == nil {
		return false
	}
	stored, err := p.positions.Read(p.ctx, p.id)
	if err != nil {
		return false
	}
	return p.adoptRewind(stored)
}

// adoptRewind settles unsureRewind against the partition's stored row and
// reports whether the row is that rewind's, taken as the partition's
// claim. Only the rewind raises the epoch to exactly the claim's + 1 with
// this owner and that position: a claim by another instance changes the
// owner, one by this instance (after a revocation) is another worker's,
// and a replay's owner is the replay's. Any other row ends the doubt: the
// rewind did not commit, or something since moved the row, which the
// caller's own comparison then judges.
func (p *partition) adoptRewind(stored dedup.Claim) bool {
	u := p.unsureRewind
	if u == nil {
		return false
	}
	p.unsureRewind = nil
	if stored.Epoch != u.Epoch || stored.Owner != u.Owner || stored.NextOffset != u.NextOffset {
		return false
	}
	p.log.Warn("a staging rewind whose COMMIT went unanswered took effect: reading again from its position",
		zap.Int64("to", u.NextOffset), zap.Int64("epoch", u.Epoch))
	p.rewound(stored)
	return true
}

// awaitStagingSync syncs the partition before it stages again: at its
// start and after a staging transaction failed its marker check. Errors
// (the target restarting) are retried until it syncs, the partition is
// fenced, or it stops: it stages nothing meanwhile.
func (p *partition) awaitStagingSync() error {
	wait := stagingSyncRetry
	for {
		err := p.syncStaging()
		var moved *dedup.PositionMovedError
		switch {
		case err == nil:
			p.stagingStale = false
			return nil
		case errors.As(err, new(*dedup.FencedError)), errors.Is(err, dedup.ErrNotClaimed):
			return p.checkClaim()
		case errors.As(err, &moved):
			p.claim.NextOffset = moved.Stored
			p.seek(moved.Stored)
			continue
		}
		if sink.Unavailable(err) {
			// A restart or a failover: counted and warned about by the
			// instance's reporter, every 10 s at most.
			p.reportDown(err)
		} else {
			p.log.Warn("checking the staging generation; trying again", zap.Duration("retry_in", wait), zap.Error(err))
		}
		select {
		case <-time.After(wait):
		case <-p.stopping:
			return errStagingSyncStopped
		case <-p.ctx.Done():
			return errStagingSyncStopped
		}
		wait = min(2*wait, idleCheck)
	}
}

// stagingSyncRetry is the first wait before syncing again after a failure.
const stagingSyncRetry = 100 * time.Millisecond

// errStagingSyncStopped ends a worker revoked or stopping while it waits
// to sync: nothing was applied, the next owner syncs.
var errStagingSyncStopped = errors.New("revoked or stopping while checking the staging generation")

// idleStagingSync is the idle partition's sync: a reset seen while it
// has nothing to stage still rewinds it. A failure leaves it to sync
// before its next batch, and is told as the idle check's are (checkClaim):
// a partition that cannot sync must not stay idle in silence.
func (p *partition) idleStagingSync() error {
	err := p.syncStaging()
	var moved *dedup.PositionMovedError
	switch {
	case err == nil:
		p.stagingStale = false
	case errors.As(err, new(*dedup.FencedError)), errors.Is(err, dedup.ErrNotClaimed):
		return p.checkClaim()
	case errors.As(err, &moved):
		p.claim.NextOffset = moved.Stored
		p.seek(moved.Stored)
		p.stagingStale = true
	default:
		p.stagingStale = true
		switch {
		case p.ctx.Err() != nil:
		case sink.Unavailable(err):
			p.reportDown(err)
		default:
			p.log.Warn("checking the staging generation at the idle check; the partition syncs before it stages again", zap.Error(err))
		}
	}
	return nil
}
