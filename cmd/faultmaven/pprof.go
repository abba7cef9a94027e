package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// The profiling listener (--pprof-addr) serves Go's runtime profiles on an
// address of its own, loopback only: profiles expose the process's code
// paths, goroutines and allocation sites, so they never share the public
// listener or its routes. The command line is not served (an API key
// given as a flag would be in it). It also
// takes POST /debug/free-os-memory (a GC that returns free memory to the
// OS), which memory benchmarks call before reading RSS.

// validPprofAddr checks --pprof-addr: empty (off) or a loopback host:port.
func validPprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("invalid --pprof-addr %q (FM_PPROF_ADDR): want host:port, e.g. 127.0.0.1:6060", addr)
	}
	if !isLoopback(host) {
		return fmt.Errorf("--pprof-addr (FM_PPROF_ADDR) must be a loopback address, got %q: profiles expose the process's internals", addr)
	}
	return nil
}

// pprofServer is the running profiling listener.
type pprofServer struct {
	srv  *http.Server
	addr string // where it listens
	done chan struct{}
}

// startPprof listens on addr and serves /debug/pprof/ until stop.
func startPprof(addr string, log *zap.Logger) (*pprofServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --pprof-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("POST /debug/free-os-memory", procstat.FreeOSMemory)
	p := &pprofServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log.Named("pprof"))},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof listener failed", zap.Error(err))
		}
	}()
	log.Info("profiling listener on", zap.String("pprof_addr", ln.Addr().String()))
	return p, nil
}

// stop closes the listener and any profile being served; a profile in
// progress is cut short rather than holding up shutdown.
func (p *pprofServer) stop() {
	_ = p.srv.Close()
	<-p.done
}
