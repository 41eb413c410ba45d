package engine

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestKMSInterfacesAreNarrow: each concern's KMS interface lists only calls
// that concern's files make (a method no file calls is a permission the
// concern does not need), and kmsAPI is exactly their union.
func TestKMSInterfacesAreNarrow(t *testing.T) {
	concerns := []struct {
		name  string
		iface reflect.Type
		files []string
	}{
		{"rotation", reflect.TypeFor[rotationKMS](), []string{"steps.go", "pending.go"}},
		{"verify", reflect.TypeFor[verifyKMS](), []string{"verify.go", "regions.go"}},
		{"replica", reflect.TypeFor[replicaKMS](), []string{"regions.go", "replicas.go"}},
		{"maintenance", reflect.TypeFor[maintenanceKMS](), []string{"maintenance.go", "orphans.go"}},
	}
	union := map[string]bool{}
	for _, c := range concerns {
		var src strings.Builder
		for _, f := range c.files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
		for i := 0; i < c.iface.NumMethod(); i++ {
			m := c.iface.Method(i).Name
			union[m] = true
			if !strings.Contains(src.String(), "."+m+"(ctx") {
				t.Errorf("%s KMS interface has %s, which none of %v calls", c.name, m, c.files)
			}
		}
	}
	all := reflect.TypeFor[kmsAPI]()
	if all.NumMethod() != len(union) {
		t.Errorf("kmsAPI has %d methods, the concerns' interfaces %d together", all.NumMethod(), len(union))
	}
	for i := 0; i < all.NumMethod(); i++ {
		if !union[all.Method(i).Name] {
			t.Errorf("kmsAPI has %s, which no concern's interface lists", all.Method(i).Name)
		}
	}
}
