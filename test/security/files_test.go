package security

import (
	"os"
	"path/filepath"
)

func readFile(dir, rel string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, rel)) }
