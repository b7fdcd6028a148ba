package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// maybeListen makes the test binary a tiny server when BTL_TEST_LISTEN is
// set (run it as `env BTL_TEST_LISTEN=127.0.0.1:PORT <test binary>`): it
// waits BTL_TEST_LISTEN_DELAY, listens on the address, says so on stdout
// and runs until it is stopped. A port that is taken ends it with exit 1.
func maybeListen() {
	addr := os.Getenv("BTL_TEST_LISTEN")
	if addr == "" {
		return
	}
	if d, err := time.ParseDuration(os.Getenv("BTL_TEST_LISTEN_DELAY")); err == nil {
		fmt.Println("starting up")
		time.Sleep(d)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\nready\n", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Close()
	}
}

// testBinary is the path of this test binary.
func testBinary() string { return os.Args[0] }

// listenArgv is the command that runs maybeListen on addr after delay.
func listenArgv(addr string, delay time.Duration) []string {
	return []string{"env", "BTL_TEST_LISTEN=" + addr, "BTL_TEST_LISTEN_DELAY=" + delay.String(), os.Args[0]}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dials reports whether a TCP connection to 127.0.0.1:port succeeds.
func dials(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
