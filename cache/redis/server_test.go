package tgredis_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run against a real redis-server that TestMain starts on
// 127.0.0.1 on a free port, with no persistence, and stops at the end.
// With no redis-server on PATH they skip, saying how to install it, unless
// TOKENGUARD_REDIS_REQUIRED=1 (set by .ci/run when it installed one): then
// a server that cannot be started fails the run.

const installHint = "install it with: apt-get install -y redis-server (Debian/Ubuntu), or put redis-server on PATH"

var (
	shared    *server // the server most tests use
	noServer  string  // why there is none, when shared is nil
	serverBin string
)

func TestMain(m *testing.M) {
	// go-redis logs each failed dial; the outage tests cause many.
	redis.SetLogger(quiet{})
	required := os.Getenv("TOKENGUARD_REDIS_REQUIRED") == "1"
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		noServer = "no redis-server on PATH; " + installHint
	} else {
		serverBin = bin
		shared, err = startServer(0)
		if err != nil {
			noServer = fmt.Sprintf("redis-server could not be started: %v", err)
		}
	}
	if shared == nil && required {
		fmt.Fprintf(os.Stderr, "TOKENGUARD_REDIS_REQUIRED=1 but %s\n", noServer)
		os.Exit(1)
	}
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...interface{}) {}

// needServer skips t when no redis-server could be started.
func needServer(t testing.TB) *server {
	t.Helper()
	if shared == nil {
		t.Skip(noServer)
	}
	return shared
}

// server is one redis-server process started by the tests.
type server struct {
	port  int
	dir   string
	extra []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// startServer starts redis-server on port (a free one when 0), with extra
// arguments after the usual ones, and waits until it answers PING.
func startServer(port int, extra ...string) (*server, error) {
	if serverBin == "" {
		return nil, fmt.Errorf("no redis-server on PATH; %s", installHint)
	}
	dir, err := os.MkdirTemp("", "tgredis-test-")
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &server{port: port, dir: dir, extra: extra}
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "",
	}
	args = append(args, s.extra...)
	cmd := exec.Command(serverBin, args...)
	out := &bytes.Buffer{}
	cmd.Stdout = &syncWriter{w: out}
	cmd.Stderr = cmd.Stdout
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %s", lastLines(cmd.Stdout.(*syncWriter).String(), 5))
		default:
		}
		if ping(s.addr()) == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING within 10s: %s", s.addr(), lastLines(cmd.Stdout.(*syncWriter).String(), 5))
}

// kill ends the process at once (SIGKILL), as a crash would, and waits
// until it has gone.
func (s *server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}

// signal sends sig to the running process.
func (s *server) signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return fmt.Errorf("redis-server on %s is not running", s.addr())
	}
	return s.cmd.Process.Signal(sig)
}

func (s *server) stop() {
	s.kill()
	os.RemoveAll(s.dir)
}

// ping sends PING over a plain connection and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// client returns a go-redis client of srv with the options the package
// documentation recommends, closed at the end of t.
func client(t testing.TB, srv *server) *redis.Client {
	t.Helper()
	c := redis.NewClient(recommended(srv.addr()))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func recommended(addr string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		ReadTimeout:           50 * time.Millisecond,
		WriteTimeout:          50 * time.Millisecond,
		DialTimeout:           100 * time.Millisecond,
		PoolTimeout:           100 * time.Millisecond,
		MaxRetries:            -1,
		DialerRetries:         1,
	}
}

// testPrefix gives each test keys of its own on the shared server.
func testPrefix(t testing.TB) string {
	return "tgtest:" + t.Name() + ":" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
