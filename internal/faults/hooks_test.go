package faults

import "testing"

func TestFromEnv(t *testing.T) {
	t.Setenv(AuditEnv, "1")
	t.Setenv(BreakEnv, "no-version-guard")
	t.Setenv(FailpointEnv, "after-commit:0.25")
	h, err := FromEnv()
	if err != nil || !h.Audit || !h.NoVersionGuard() || h.Failpoints["after-commit"] != 0.25 || !h.Armed() {
		t.Fatalf("FromEnv = %+v, %v", h, err)
	}
	t.Setenv(BreakEnv, "everything")
	if _, err := FromEnv(); err == nil {
		t.Fatal("FromEnv accepted an unknown break")
	}
	t.Setenv(BreakEnv, "")
	t.Setenv(FailpointEnv, "nowhere:1")
	if _, err := FromEnv(); err == nil {
		t.Fatal("FromEnv accepted an unknown failpoint")
	}
	t.Setenv(FailpointEnv, "")
	t.Setenv(PanicEnv, "apply:poison-me")
	if h, err := FromEnv(); err != nil || !h.PanicsOn("apply", []byte(`{"v":"poison-me"}`)) || h.PanicsOn("decode", []byte("poison-me")) || h.PanicsOn("apply", []byte("clean")) {
		t.Fatalf("panic hook: %+v, %v", h, err)
	}
	t.Setenv(PanicEnv, "everywhere:x")
	if _, err := FromEnv(); err == nil {
		t.Fatal("FromEnv accepted an unknown panic site")
	}
	t.Setenv(PanicEnv, "")
	t.Setenv(AuditEnv, "")
	if h, err := FromEnv(); err != nil || h.Armed() {
		t.Fatalf("nothing set: %+v, %v", h, err)
	}
}
