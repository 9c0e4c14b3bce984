package jsonenvelope

import "testing"

func TestJoin(t *testing.T) {
	got := Join([]byte(`{"type":"int64"}`), []byte(`7`))
	if want := `{"schema":{"type":"int64"},"payload":7}`; string(got) != want || len(got) != Overhead+len(`{"type":"int64"}`)+1 {
		t.Fatalf("Join = %s, want %s (Overhead %d)", got, want, Overhead)
	}
}
