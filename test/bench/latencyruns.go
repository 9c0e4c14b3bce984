package main

import (
	"slices"
	"sort"
)

// addLatency files a latency run under its setting: the default settings'
// first run in Latency and the others in LatencyRepeats,
// synchronous_commit: off in LatencySyncOff, other batch waits in
// LatencyOtherWaits (the fields of results.json before the rounds).
func (r *Results) addLatency(v latencyVariant, l *Latency) {
	switch {
	case v.syncOff:
		r.LatencySyncOff = append(r.LatencySyncOff, l)
	case v.maxWait != "", v.pipeline != "", v.conns != "", v.bin != "":
		r.LatencyOtherWaits = append(r.LatencyOtherWaits, l)
	case r.Latency == nil:
		r.Latency = l
	default:
		r.LatencyRepeats = append(r.LatencyRepeats, l)
	}
}

// latencySettings are the latency runs per setting, in the order the
// settings ran in a round, each setting's runs by round.
func (r *Results) latencySettings() [][]*Latency {
	var settings [][]*Latency
	if r.Latency != nil {
		settings = append(settings, append([]*Latency{r.Latency}, r.LatencyRepeats...))
	}
	if len(r.LatencySyncOff) > 0 {
		settings = append(settings, r.LatencySyncOff)
	}
	var waits []string
	byWait := map[string][]*Latency{}
	for _, l := range r.LatencyOtherWaits {
		if _, seen := byWait[l.MaxWait]; !seen {
			waits = append(waits, l.MaxWait)
		}
		byWait[l.MaxWait] = append(byWait[l.MaxWait], l)
	}
	for _, w := range waits {
		settings = append(settings, byWait[w])
	}
	for _, runs := range settings {
		sort.SliceStable(runs, func(i, j int) bool { return runs[i].Round < runs[j].Round })
	}
	return settings
}

// medianLatency is the median of each figure of runs of one setting, taken
// separately: the median p99 is the p99 of the middle run by p99, not of the
// run with the median p50.
func medianLatency(runs []*Latency) *Latency {
	if len(runs) == 0 {
		return &Latency{}
	}
	med := func(f func(*Latency) float64) float64 {
		vs := make([]float64, len(runs))
		for i, x := range runs {
			vs[i] = f(x)
		}
		slices.Sort(vs)
		if n := len(vs); n%2 == 0 {
			return (vs[n/2-1] + vs[n/2]) / 2
		}
		return vs[len(vs)/2]
	}
	return &Latency{
		MaxWait: runs[0].MaxWait, SynchronousCommit: runs[0].SynchronousCommit, Rate: runs[0].Rate, WarmupSeconds: runs[0].WarmupSeconds,
		SteadyP50ms:   med(func(x *Latency) float64 { return x.SteadyP50ms }),
		SteadyP99ms:   med(func(x *Latency) float64 { return x.SteadyP99ms }),
		P50ms:         med(func(x *Latency) float64 { return x.P50ms }),
		P99ms:         med(func(x *Latency) float64 { return x.P99ms }),
		ReceiveP50ms:  med(func(x *Latency) float64 { return x.ReceiveP50ms }),
		ReceiveP99ms:  med(func(x *Latency) float64 { return x.ReceiveP99ms }),
		DispatchP99ms: med(func(x *Latency) float64 { return x.DispatchP99ms }),
		QueuedP99ms:   med(func(x *Latency) float64 { return x.QueuedP99ms }),
		Pauses:        med(func(x *Latency) float64 { return x.Pauses }),
		ApplyP50ms:    med(func(x *Latency) float64 { return x.ApplyP50ms }),
		ApplyP99ms:    med(func(x *Latency) float64 { return x.ApplyP99ms }),
		MeanBatch:     med(func(x *Latency) float64 { return x.MeanBatch }),
		CPUPerM:       med(func(x *Latency) float64 { return x.CPUPerM }),
		PeakRSSMiB:    med(func(x *Latency) float64 { return x.PeakRSSMiB }),
	}
}

// synchronousCommit is a run's postgres.synchronous_commit as the report
// shows it.
func synchronousCommit(l *Latency) string {
	if l.SynchronousCommit == "" {
		return "on (default)"
	}
	return l.SynchronousCommit
}
