package connector

import "sync"

// warnOnce remembers the warnings given, so that a condition met on every
// batch is logged once per kind and table for the whole process; its
// metric counts every occurrence. A nil warnOnce warns every time.
type warnOnce struct{ seen sync.Map }

// first reports whether this is the first warning of kind for table.
func (w *warnOnce) first(kind, table string) bool {
	if w == nil {
		return true
	}
	_, seen := w.seen.LoadOrStore(kind+"\x00"+table, struct{}{})
	return !seen
}
