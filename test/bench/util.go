package bench

import (
	"encoding/json"
	"strings"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func wrappingKeySpecOf(wk *WrappingKey) keyspec.WrappingKeySpec {
	switch wk.Private.N.BitLen() {
	case 2048:
		return keyspec.WrapRSA2048
	case 3072:
		return keyspec.WrapRSA3072
	default:
		return keyspec.WrapRSA4096
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
