package dedup

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Start is a partition to claim and where it begins when it has no row yet.
type Start struct {
	PartitionID
	Offset int64
}

// ClaimAll is Claim for many partitions in one statement, so one
// transaction: each partition's epoch is raised (or its row created at its
// start, epoch 1) and the claims come back in the order of starts. It is
// all or nothing: on error no partition is claimed. Like Claim, it waits
// behind any former owner's transaction that still holds one of the rows,
// which is what fences a zombie's batch in flight (I2); the rows are locked
// in (group, topic, partition) order, so two ClaimAll over overlapping sets
// wait for each other instead of deadlocking. Run it outside any batch
// transaction.
func (o Offsets) ClaimAll(ctx context.Context, db Querier, starts []Start, owner string) ([]Claim, error) {
	if len(starts) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(starts)
	slices.SortFunc(sorted, func(a, b Start) int { return a.PartitionID.Compare(b.PartitionID) })
	n := len(sorted)
	groups, topics, partitions, offsets := make([]string, n), make([]string, n), make([]int32, n), make([]int64, n)
	for i, s := range sorted {
		if s.Offset < 0 {
			return nil, fmt.Errorf("partition %s: start offset %d must be a real offset (resolve earliest/latest first)", s.PartitionID, s.Offset)
		}
		if i > 0 && sorted[i-1].PartitionID.Compare(s.PartitionID) == 0 {
			// ON CONFLICT cannot touch one row twice in a statement.
			return nil, fmt.Errorf("partition %s: asked to claim twice at once", s.PartitionID)
		}
		groups[i], topics[i], partitions[i], offsets[i] = s.Group, s.Topic, s.Partition, s.Offset
	}
	rows, err := db.Query(ctx, `INSERT INTO `+o.table+` AS o (group_id, topic, partition, next_offset, epoch, owner)
		SELECT s.group_id, s.topic, s.partition, s.next_offset, 1, $5
		  FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[]) WITH ORDINALITY
		       AS s (group_id, topic, partition, next_offset, n)
		 ORDER BY s.n
		ON CONFLICT (group_id, topic, partition) DO UPDATE
		   SET epoch = o.epoch + 1, owner = excluded.owner, updated_at = now(), stopped_reason = NULL, stopped_at = NULL
		RETURNING group_id, topic, partition, next_offset, epoch`, groups, topics, partitions, offsets, owner)
	if err != nil {
		return nil, fmt.Errorf("claim %d partitions: %w", n, err)
	}
	claimed := make(map[PartitionID]Claim, n)
	for rows.Next() {
		c := Claim{Owner: owner}
		if err := rows.Scan(&c.Group, &c.Topic, &c.Partition, &c.NextOffset, &c.Epoch); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim %d partitions: %w", n, err)
		}
		claimed[c.PartitionID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim %d partitions: %w", n, err)
	}
	out := make([]Claim, len(starts))
	for i, s := range starts {
		c, ok := claimed[s.PartitionID]
		if !ok {
			return nil, fmt.Errorf("partition %s: claim returned no row", s.PartitionID)
		}
		out[i] = c
	}
	return out, nil
}

// Compare orders partitions by group, topic and number: the order claims
// lock offsets rows in, and a stable order for a set held in a map.
func (p PartitionID) Compare(q PartitionID) int {
	return cmp.Or(cmp.Compare(p.Group, q.Group), cmp.Compare(p.Topic, q.Topic), cmp.Compare(p.Partition, q.Partition))
}
