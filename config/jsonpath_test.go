package config

import (
	"reflect"
	"testing"
)

func TestJSONPath(t *testing.T) {
	tests := []struct {
		in      string
		want    []PathStep
		wantErr bool
	}{
		{in: "$", want: nil},
		{in: "$.id", want: []PathStep{{Member: "id"}}},
		{in: "$.customer.id", want: []PathStep{{Member: "customer"}, {Member: "id"}}},
		{in: "$['total amount']", want: []PathStep{{Member: "total amount"}}},
		{in: "$.lines[2].sku", want: []PathStep{{Member: "lines"}, {Index: 2, IsIndex: true}, {Member: "sku"}}},
		{in: "id", wantErr: true},
		{in: "$.", wantErr: true},
		{in: "$..id", wantErr: true},
		{in: "$[-1]", wantErr: true},
		{in: "$[1", wantErr: true},
		{in: "$['a", wantErr: true},
		{in: "$x", wantErr: true},
	}
	for _, tt := range tests {
		var got JSONPath
		err := got.parseScalar(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("JSONPath(%q): error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got.Steps, tt.want) {
			t.Errorf("JSONPath(%q) steps = %+v, want %+v", tt.in, got.Steps, tt.want)
		}
	}
}
