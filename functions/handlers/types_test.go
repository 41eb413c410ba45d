package handlers_test

import "github.com/keyferry/keyferry/shared/keyspec"

type (
	keyspecAlg = keyspec.WrappingAlgorithm
	keyspecWKS = keyspec.WrappingKeySpec
)
