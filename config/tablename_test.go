package config

import "testing"

func TestTableNameParse(t *testing.T) {
	tests := []struct {
		in      string
		want    TableName
		wantErr bool
	}{
		{in: "public.customers", want: TableName{"public", "customers"}},
		{in: "Public.Customers", want: TableName{"public", "customers"}},
		{in: `"My Schema"."Order"`, want: TableName{"My Schema", "Order"}},
		{in: `app."semi;colon"`, want: TableName{"app", "semi;colon"}},
		{in: `app."say ""hi"""`, want: TableName{"app", `say "hi"`}},
		{in: `s.t$1`, want: TableName{"s", "t$1"}},
		{in: `s.1t`, wantErr: true},
		{in: `customers`, wantErr: true},
		{in: `a.b.c`, wantErr: true},
		{in: `a.`, wantErr: true},
		{in: `."t"`, wantErr: true},
		{in: `a.""`, wantErr: true},
		{in: `a."t`, wantErr: true},
		{in: `a."t"x`, wantErr: true},
		{in: `a.t x`, wantErr: true},
	}
	for _, tt := range tests {
		var got TableName
		err := got.parseScalar(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("TableName(%q): error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("TableName(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

// TestTableNameRoundTrip checks that String renders a name that parses
// back to the same name.
func TestTableNameRoundTrip(t *testing.T) {
	for _, name := range []TableName{
		{"public", "customers"}, {"My Schema", "Order"}, {"a", `say "hi"`}, {"s", "semi;colon"}, {"s", "1abc"}, {"S", "t"},
	} {
		var back TableName
		if err := back.parseScalar(name.String()); err != nil || back != name {
			t.Errorf("%#v rendered as %s parsed back as %#v (err %v), want the same name", name, name.String(), back, err)
		}
	}
}
