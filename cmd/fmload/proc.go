package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// Target processes and what /proc says about them.

// proc is a target subprocess: the server or the relay.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string // from its "… serving" log line
	// debugAddr takes POST /debug/free-os-memory: the server's profiling
	// listener (FM_PPROF_ADDR), the relay's own address.
	debugAddr string

	exited  chan struct{} // closed when Wait returned
	logDone chan struct{} // closed when its output is drained

	mu       sync.Mutex
	tail     []string // last lines of output, for errors
	warnings int      // log lines at warn level or above
}

// maxTail is how many output lines a proc keeps for error messages.
const maxTail = 30

// startProc starts path with args and waits for its "serving" line. The
// child gets its own process group and SIGKILL should this process die.
//
// debugAddr is where the child takes POST /debug/free-os-memory when that
// is not its own address (the server's profiling listener), else "".
func startProc(ctx context.Context, name, path string, args, env []string, debugAddr string) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	_ = w.Close() // the child holds its end
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), logDone: make(chan struct{}), debugAddr: debugAddr}
	addrCh := make(chan string, 1)
	go p.readLog(r, addrCh)
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	if p.addr, err = p.awaitServing(ctx, addrCh); err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	if p.debugAddr == "" {
		p.debugAddr = p.addr
	}
	return p, nil
}

// awaitServing learns where the child listens: from its "serving" log
// line when its log level prints it, else from its listening sockets in
// /proc (faultmaven logs that line at info, so --log-level warn hides it).
// Either way the address must answer HTTP before it counts.
func (p *proc) awaitServing(ctx context.Context, addrCh <-chan string) (string, error) {
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case addr := <-addrCh:
			if answersHTTP(ctx, addr) {
				return addr, nil
			}
			return "", fmt.Errorf("%s reported %s but does not answer there: %s", p.name, addr, p.lastLines())
		case <-poll.C:
			addrs, _ := listenAddrs(p.pid())
			for _, addr := range addrs {
				// The server's profiling listener is not its address.
				if addr != p.debugAddr && answersHTTP(ctx, addr) {
					return addr, nil
				}
			}
		case <-p.exited:
			return "", fmt.Errorf("%s exited before serving: %s", p.name, p.lastLines())
		case <-deadline.C:
			return "", fmt.Errorf("%s was not serving within 60s: %s", p.name, p.lastLines())
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// answersHTTP reports whether an HTTP server answers GET /healthz at addr
// (any status will do: the relay has no such route).
func answersHTTP(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}

// listenAddrs lists the loopback IPv4 TCP sockets pid listens on: the
// socket inodes among its open files, looked up in /proc/<pid>/net/tcp.
func listenAddrs(pid int) ([]string, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil, err
	}
	return parseListening(string(table), inodes), nil
}

// parseListening picks from a /proc/net/tcp table the loopback sockets in
// state LISTEN (0A) whose inode is in inodes.
func parseListening(table string, inodes map[string]bool) []string {
	var out []string
	for line := range strings.SplitSeq(table, "\n") {
		f := strings.Fields(line)
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		hexIP, hexPort, ok := strings.Cut(f[1], ":")
		if !ok || len(hexIP) != 8 {
			continue
		}
		ip, err1 := strconv.ParseUint(hexIP, 16, 32)
		port, err2 := strconv.ParseUint(hexPort, 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		// The address is in host (little-endian) byte order.
		a := netip.AddrFrom4([4]byte{byte(ip), byte(ip >> 8), byte(ip >> 16), byte(ip >> 24)})
		if a.IsLoopback() {
			out = append(out, netip.AddrPortFrom(a, uint16(port)).String())
		}
	}
	return out
}

// readLog drains the child's output: it reports the listen address once,
// counts warnings and keeps the last lines.
func (p *proc) readLog(r *os.File, addrCh chan<- string) {
	defer close(p.logDone)
	defer func() { _ = r.Close() }()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		if !found {
			if addr, ok := servingAddr(line); ok {
				found = true
				addrCh <- addr
			}
		}
		p.mu.Lock()
		if isWarning(line) {
			p.warnings++
		}
		if len(p.tail) == maxTail {
			p.tail = append(p.tail[:0], p.tail[1:]...)
		}
		p.tail = append(p.tail, string(line))
		p.mu.Unlock()
	}
}

// servingAddr parses a JSON log line announcing the listen address
// ({"msg":"faultmaven serving","addr":"127.0.0.1:41234",…}).
func servingAddr(line []byte) (string, bool) {
	if !bytes.Contains(line, []byte("serving")) {
		return "", false
	}
	var rec struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal(line, &rec) != nil || !strings.HasSuffix(rec.Msg, "serving") || rec.Addr == "" {
		return "", false
	}
	return rec.Addr, true
}

func isWarning(line []byte) bool {
	for _, l := range []string{`"level":"warn"`, `"level":"error"`, `"level":"dpanic"`, `"level":"panic"`, `"level":"fatal"`} {
		if bytes.Contains(line, []byte(l)) {
			return true
		}
	}
	return bytes.HasPrefix(line, []byte("panic:")) || bytes.HasPrefix(line, []byte("fatal error:"))
}

func (p *proc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

func (p *proc) warningCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.warnings
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the process to shut down (SIGTERM) and kills its whole process
// group if it has not exited within grace. It waits for the exit and for
// the output to drain, and is safe to call more than once.
func (p *proc) stop(grace time.Duration) {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.exited:
		case <-t.C:
		}
		t.Stop()
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL) // stragglers of the group, if any
	<-p.exited
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.logDone:
	case <-t.C: // a grandchild still holds the pipe; do not wait for it
	}
}

// kill is the last resort of the watchdog: SIGKILL, no waiting.
func (p *proc) kill() { _ = syscall.Kill(-p.pid(), syscall.SIGKILL) }

// procs is every subprocess alive, so any exit path can kill them.
type procs struct {
	mu  sync.Mutex
	set map[*proc]struct{}
}

func (ps *procs) add(p *proc) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.set == nil {
		ps.set = map[*proc]struct{}{}
	}
	ps.set[p] = struct{}{}
}

func (ps *procs) remove(p *proc) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	delete(ps.set, p)
}

func (ps *procs) killAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for p := range ps.set {
		p.kill()
	}
}

// cpuTime is a process's user + system CPU time so far.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line; the command name (field 2) may contain spaces.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / procstat.ClockTicks, nil
}

// raiseFileLimit lifts the soft open-files limit to the hard one. Setting
// it explicitly also makes the children inherit it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

// freeMemory asks the target to collect garbage and return free memory
// to the OS, so that the RSS read next counts memory in use.
func (p *proc) freeMemory(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.debugAddr+"/debug/free-os-memory", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST /debug/free-os-memory: HTTP %d", resp.StatusCode)
	}
	return nil
}
