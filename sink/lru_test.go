package sink

import "testing"

// The cache holds at most its capacity and forgets the least recently
// used, a read counting as a use.
func TestLRUForgetsTheLeastRecentlyUsed(t *testing.T) {
	c := newLRU[string, int](2)
	c.put("a", 1)
	c.put("b", 2)
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("get(a) = %d, %v; want 1, true", v, ok)
	}
	c.put("c", 3) // b is the least recently used
	if _, ok := c.get("b"); ok {
		t.Error("b is still cached: want it forgotten, the least recently used")
	}
	if _, ok := c.get("a"); !ok {
		t.Error("a is forgotten: want it kept, read after b was put")
	}
	c.put("c", 4)
	if v, _ := c.get("c"); v != 4 || c.len() != 2 {
		t.Errorf("c = %d with %d entries; want 4 and 2: a put replaces", v, c.len())
	}
}
