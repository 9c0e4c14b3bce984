package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
)

// fillStatus is the progress of one fill (`replay --into`, `replay
// --rebuild --online`): running, or killed and resumable.
type fillStatus struct {
	Table string `json:"table"` // the table being filled
	Group string `json:"group"` // its positions' group in the offsets table
	// Applied and Total count the records from the start of the topics:
	// Total up to the high watermarks now.
	Applied    int64                 `json:"applied"`
	Total      int64                 `json:"total"`
	Owner      string                `json:"owner"`
	UpdatedAt  *time.Time            `json:"updated_at,omitempty"`
	Partitions []fillPartitionStatus `json:"partitions"`
}

// fillPartitionStatus is one partition of a fill.
type fillPartitionStatus struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	NextOffset    int64  `json:"next_offset"`
	HighWatermark int64  `json:"high_watermark"`
}

// fills reads the positions of the group's fills.
func fills(ctx context.Context, cfg *config.Config, conn *pgx.Conn, in *connector.Inspector) ([]fillStatus, error) {
	offsets := dedup.NewOffsets(cfg.Postgres.Schema)
	groups, err := offsets.FillGroups(ctx, conn, cfg.Kafka["group.id"])
	if err != nil {
		return nil, err
	}
	out := []fillStatus{}
	for _, g := range groups {
		table, _ := dedup.FillTarget(cfg.Kafka["group.id"], g)
		stored, err := offsets.List(ctx, conn, g)
		if err != nil {
			return nil, err
		}
		f := fillStatus{Table: table, Group: g}
		for _, s := range stored {
			low, high, err := in.Watermarks(s.Topic, s.Partition)
			if err != nil {
				return nil, err
			}
			f.Applied += max(s.NextOffset-low, 0)
			f.Total += high - low
			f.Owner = s.Owner
			if f.UpdatedAt == nil || s.UpdatedAt.After(*f.UpdatedAt) {
				at := s.UpdatedAt
				f.UpdatedAt = &at
			}
			f.Partitions = append(f.Partitions, fillPartitionStatus{Topic: s.Topic, Partition: s.Partition, NextOffset: s.NextOffset, HighWatermark: high})
		}
		out = append(out, f)
	}
	return out, nil
}

func printFills(w io.Writer, fs []fillStatus) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nfills (replay --into, replay --rebuild --online; a stale one was killed: rerun its replay to resume):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tAPPLIED\tOF\tOWNER\tLAST APPLIED\n")
	for _, f := range fs {
		last := "-"
		if f.UpdatedAt != nil {
			last = time.Since(*f.UpdatedAt).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d (%.0f%%)\t%s\t%s\n", f.Table, f.Applied, f.Total, 100*float64(f.Applied)/float64(max(f.Total, 1)), f.Owner, last)
	}
	tw.Flush()
}
