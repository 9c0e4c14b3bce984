package main

import (
	"context"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/sink/catalog"
	"github.com/pgsink/pgsink/upstream"
	"go.uber.org/zap"
)

// upstreamTimeout bounds run's check of the connectors at start, catalog
// reads included: Connect being down must not hold pgsink's start for long.
const upstreamTimeout = 20 * time.Second

// checkUpstream reads the connectors of debezium.connect_url and checks
// them against cfg and the targets read from the catalog (by key path).
func checkUpstream(ctx context.Context, cfg *config.Config, targets map[string]*catalog.Table) ([]upstream.Finding, error) {
	client, err := upstream.NewClient(cfg.Debezium)
	if err != nil {
		return nil, err
	}
	connectors, err := client.Connectors(ctx)
	if err != nil {
		return nil, err
	}
	return upstream.Check(cfg, connectors, targets), nil
}

// upstreamProblem is a finding as validate prints it: at the line of its
// table entry.
func upstreamProblem(cfg *config.Config, f upstream.Finding) config.Problem {
	return cfg.Problem(f.Path, "%s", f.Message())
}

// warnUpstream logs, at run's start, every finding of the upstream check as
// a warning (one that only costs, Info, at info level): run applies what arrives whatever the connectors lose, and
// validate is where a finding fails. A check that cannot be made is a
// warning too.
func warnUpstream(ctx context.Context, cfg *config.Config, q catalog.Querier, log *zap.Logger) {
	if cfg.Debezium.ConnectURL == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	targets := map[string]*catalog.Table{}
	for _, t := range cfg.Tables {
		if t.Target.Template != nil {
			continue // derived per topic: read below, for the topics that exist
		}
		// A target that cannot be read is checked without its columns;
		// the sink reports the reason when it meets the table.
		if target, err := catalog.Read(ctx, q, t.Target.Schema, t.Target.Name); err == nil {
			targets[t.Path] = target
		}
	}
	readDerivedTargets(ctx, cfg, q, targets, log)
	findings, err := checkUpstream(ctx, cfg, targets)
	if err != nil {
		log.Warn("upstream check not made: the Debezium connectors' settings are not checked",
			zap.String("connect_url", cfg.Debezium.ConnectURL), zap.Error(err))
		return
	}
	losses := 0
	for _, f := range findings {
		logAt := log.Warn
		if f.Severity == upstream.Info {
			logAt = log.Info
		} else {
			losses++
		}
		logAt("upstream check: "+upstreamProblem(cfg, f).String(),
			zap.String("severity", f.Severity.String()), zap.String("table", f.Path), zap.String("connector", f.Connector),
			zap.String("setting", f.Setting), zap.String("column", f.Column))
	}
	if losses > 0 {
		log.Warn("upstream check: the connectors lose data pgsink cannot bring back; pgsink validate lists these findings",
			zap.Int("findings", losses))
	}
}

// checkUpstreamBeside runs warnUpstream on its own goroutine and returns
// the function that cancels it and waits for it. A panic in the check is
// logged as an error, not carried into the apply it runs beside.
func checkUpstreamBeside(ctx context.Context, cfg *config.Config, q catalog.Querier, log *zap.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				log.Error("upstream check failed: the Debezium connectors' settings are not checked", zap.Any("panic", r))
			}
		}()
		warnUpstream(ctx, cfg, q, log)
	}()
	return func() {
		cancel()
		<-done
	}
}

// readDerivedTargets adds to targets the catalog of every target a template
// derives from a topic that exists now, keyed as upstream.Check looks them
// up, so that run's check covers their columns as validate's does. A
// target derived per record, or from a topic created later, is not known
// here; the log says when the topics cannot be listed at all.
func readDerivedTargets(ctx context.Context, cfg *config.Config, q catalog.Querier, targets map[string]*catalog.Table, log *zap.Logger) {
	if !hasTemplates(cfg) {
		return
	}
	topics, err := clusterTopics(cfg)
	if err != nil {
		log.Warn("upstream check: the topics could not be listed, so the columns of targets a template derives are not checked; pgsink validate checks them",
			zap.Error(err))
		return
	}
	for _, t := range resolveRoutes(cfg, topics).derived {
		if target, err := catalog.Read(ctx, q, t.Target.Schema, t.Target.Name); err == nil {
			targets[upstream.DerivedKey(t.Target.TableName)] = target
		}
	}
}
