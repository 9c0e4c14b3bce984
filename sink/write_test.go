package sink

import "testing"

func TestTypedSlice(t *testing.T) {
	if got, ok := typedSlice([]any{int64(1), int64(2)}).([]int64); !ok || len(got) != 2 || got[1] != 2 {
		t.Errorf("int64 keys: %#v", got)
	}
	if got, ok := typedSlice([]any{"a", "b"}).([]string); !ok || got[0] != "a" {
		t.Errorf("string keys: %#v", got)
	}
	mixed := []any{int64(1), "b"}
	if got, ok := typedSlice(mixed).([]any); !ok || len(got) != 2 {
		t.Errorf("mixed keys: %#v, want them as they are", got)
	}
	if got, ok := typedSlice([]any{int32(1)}).([]any); !ok || got[0] != int32(1) {
		t.Errorf("int32 keys: %#v, want them as they are", got)
	}
}
