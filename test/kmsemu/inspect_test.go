package kmsemu

import (
	"bytes"
	"testing"
)

func TestImportedMaterialsReturnsCopies(t *testing.T) {
	s := New(Options{WrappingKeyPool: -1})
	s.keys["k1"] = &key{id: "k1", arn: "arn:k1", materials: []*material{
		{id: "m1", raw: []byte{1, 2, 3}, imported: true, state: "CURRENT"},
		{id: "m2", raw: []byte{9}, imported: false, state: "NON_CURRENT"},
	}}
	s.order = append(s.order, "k1")
	got := s.ImportedMaterials()
	if len(got) != 1 || got[0].KeyMaterialID != "m1" || !bytes.Equal(got[0].Material, []byte{1, 2, 3}) {
		t.Fatalf("ImportedMaterials = %+v, want only the imported m1", got)
	}
	got[0].Material[0] = 0xff
	if s.keys["k1"].materials[0].raw[0] != 1 {
		t.Fatal("ImportedMaterials returned the emulator's own slice, not a copy")
	}
}
