// Command cmd prints the cdk-nag summary of a cloud assembly and exits 1 if
// any finding is left open or a report is missing (make lint-template):
//
//	go run ./infra/nagreport/cmd cdk.out
package main

import (
	"fmt"
	"os"

	"github.com/keyferry/keyferry/infra/nagreport"
)

func main() {
	dir := "cdk.out"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	reps, err := nagreport.Read(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nagreport:", err)
		os.Exit(1)
	}
	nagreport.Summary(os.Stdout, reps)
	if err := nagreport.Check(reps); err != nil {
		fmt.Fprintln(os.Stderr, "nagreport:", err)
		os.Exit(1)
	}
}
