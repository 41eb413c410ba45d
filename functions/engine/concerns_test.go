package engine

import (
	"reflect"
	"testing"

	"github.com/keyferry/keyferry/functions/store"
)

// TestEngineConcernsUseNarrowInterfaces: each concern holds its clients and
// its part of the store as the narrow interfaces it uses (the maintainer's
// KMS client is maintenanceKMS, not kmsAPI), and none holds the Engine,
// its whole KMS client or the whole store, directly or through a concern
// it composes.
func TestEngineConcernsUseNarrowInterfaces(t *testing.T) {
	type want struct {
		field string
		iface reflect.Type
		// wider is what the field narrows (its dynamic value is one).
		wider reflect.Type
	}
	var (
		engineT = reflect.TypeFor[*Engine]()
		storeT  = reflect.TypeFor[*store.Store]()
	)
	for _, tc := range []struct {
		concern reflect.Type
		fields  []want
	}{
		{reflect.TypeFor[agentBroker](), []want{
			{"conns", reflect.TypeFor[connectionsAPI](), nil},
			{"store", reflect.TypeFor[agentStore](), storeT},
			{"jobs", reflect.TypeFor[jobRunner](), engineT},
		}},
		{reflect.TypeFor[alarmReconciler](), []want{
			{"cw", reflect.TypeFor[cloudWatchAPI](), nil},
			{"gens", reflect.TypeFor[generationReader](), storeT},
		}},
		{reflect.TypeFor[maintainer](), []want{
			{"kms", reflect.TypeFor[maintenanceKMS](), reflect.TypeFor[kmsAPI]()},
			{"store", reflect.TypeFor[maintenanceStore](), storeT},
			{"jobs", reflect.TypeFor[maintenanceRotation](), engineT},
		}},
	} {
		t.Run(tc.concern.Name(), func(t *testing.T) {
			for _, w := range tc.fields {
				f, ok := tc.concern.FieldByName(w.field)
				switch {
				case !ok:
					t.Errorf("%s has no field %s", tc.concern, w.field)
					continue
				case f.Type != w.iface:
					t.Errorf("%s.%s is %s, want %s", tc.concern, w.field, f.Type, w.iface)
					continue
				}
				if w.wider == nil {
					continue
				}
				if !w.wider.Implements(w.iface) {
					t.Errorf("%s does not implement %s.%s's %s", w.wider, tc.concern, w.field, w.iface)
				}
				if n, all := w.iface.NumMethod(), methods(w.wider); n >= all {
					t.Errorf("%s.%s: %s has %d methods, not fewer than %s's %d", tc.concern, w.field, w.iface, n, w.wider, all)
				}
			}
			forbidden := map[reflect.Type]bool{
				engineT: true, engineT.Elem(): true, storeT: true, storeT.Elem(): true,
				reflect.TypeFor[kmsAPI](): true,
			}
			walkFields(tc.concern, tc.concern.Name(), map[reflect.Type]bool{}, func(path string, ft reflect.Type) {
				if forbidden[ft] {
					t.Errorf("%s is a %s: a concern holds only the narrow interfaces it uses", path, ft)
				}
			})
		})
	}
}

// methods counts the (exported) methods of t: for the Engine and the
// store these alone outnumber the narrow interfaces.
func methods(t reflect.Type) int { return t.NumMethod() }

// walkFields calls f with every field of struct type t, and of the
// structs of this package it embeds or points to (common, a composed
// concern), by path.
func walkFields(t reflect.Type, path string, seen map[reflect.Type]bool, f func(path string, ft reflect.Type)) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() != reflect.TypeFor[Engine]().PkgPath() {
		return
	}
	seen[t] = true
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		p := path + "." + sf.Name
		f(p, sf.Type)
		walkFields(sf.Type, p, seen, f)
	}
}
