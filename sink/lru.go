package sink

import "container/list"

// lru is a map of at most capacity entries that forgets the least recently
// used: the applier's caches of what it built per table, which would
// otherwise grow with every table and every column set a schema change
// makes, for as long as the process runs. Not safe for concurrent use.
type lru[K comparable, V any] struct {
	capacity int
	order    *list.List // of *lruEntry[K, V], the most recent in front
	items    map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
}

func newLRU[K comparable, V any](capacity int) *lru[K, V] {
	return &lru[K, V]{capacity: capacity, order: list.New(), items: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(key K) (V, bool) {
	e, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).value, true
}

func (c *lru[K, V]) put(key K, value V) {
	if e, ok := c.items[key]; ok {
		e.Value.(*lruEntry[K, V]).value = value
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry[K, V]{key, value})
	if c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruEntry[K, V]).key)
	}
}

func (c *lru[K, V]) len() int { return c.order.Len() }

// statementSets is how many tables' (and column sets') statements an
// applier keeps: more than an instance writes at once in any fleet
// docs/scaling.md sizes, so that only tables not written for long, or
// superseded by a schema change, are built again.
const statementSets = 1024
