//go:build cgo

// Links the program with libc when cgo is on.
package main

// static int one(void) { return 1; }
import "C"

var _ = C.one()
