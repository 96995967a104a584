// Four goroutines and main blocked in read(2) on pipes: five OS threads
// whose stack pointers are on goroutine stacks, beside the runtime's
// idle threads. Built with cgo (cgo.go, every thread on a pthread stack)
// and without.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func block() {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		panic(err)
	}
	var b [1]byte
	syscall.Read(p[0], b[:])
}

func main() {
	const blocked = 4
	for i := 0; i < blocked; i++ {
		go block()
	}
	time.Sleep(300 * time.Millisecond)
	fmt.Printf("ready blocked=%d\n", blocked)
	os.Stdout.Sync()
	block()
}
