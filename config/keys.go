package config

import (
	"reflect"
	"strings"
)

// Keys lists every configuration key path, in struct order, with "[]" for
// the entries of a list ("tables[].columns.rename"). Keys of maps (kafka,
// columns.rename, payload) are the user's and not listed. The reference
// documentation is checked against it, so that no key goes undocumented.
func Keys() []string {
	var keys []string
	collectKeys(reflect.TypeFor[Config](), "", &keys)
	return keys
}

func collectKeys(t reflect.Type, prefix string, keys *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := joinPath(prefix, name)
		*keys = append(*keys, path)
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			collectKeys(ft.Elem(), path+"[]", keys)
			continue
		}
		if ft.Kind() == reflect.Struct && !isScalarType(ft) {
			collectKeys(ft, path, keys)
		}
	}
}

// isScalarType reports whether a struct type is written as one YAML value.
func isScalarType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(reflect.TypeFor[scalarParser]())
}
