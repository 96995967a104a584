// Coverage program: Go with a heap of small and large objects and goroutines.
package main

import (
	"fmt"
	"os"
	"time"
)

var keep [][]byte
var m = map[int]string{}

func main() {
	for i := 0; i < 32; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	for i := 0; i < 100000; i++ {
		m[i] = fmt.Sprint("v", i)
	}
	done := make(chan bool)
	for i := 0; i < 16; i++ {
		go func() { <-done }()
	}
	fmt.Println("ready", len(keep), len(m))
	os.Stdout.Sync()
	time.Sleep(time.Hour)
}
