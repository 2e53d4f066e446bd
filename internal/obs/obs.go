package obs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a new registry holding the Go runtime collector
// (go_*) and the process collector (process_*: CPU, memory, open files).
// Each process makes one and registers every role's collector on it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// CheckFunc reports the state of one role for /healthz: a short word
// ("serving", "round 12 ok", "head 1234") and nil when healthy, or an error
// saying what is wrong (the reason /healthz answers 503 with). It is called
// on every /healthz request, so it must be cheap and must not block.
type CheckFunc func() (state string, err error)

// Health is the set of checks behind /healthz. The zero value has no
// checks and is healthy. Its methods are safe for concurrent use.
type Health struct {
	mu     sync.Mutex
	names  []string
	checks map[string]CheckFunc
}

// Add registers the check of a role; a second Add with the same name
// replaces the first.
func (h *Health) Add(name string, f CheckFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.checks == nil {
		h.checks = map[string]CheckFunc{}
	}
	if _, ok := h.checks[name]; !ok {
		h.names = append(h.names, name)
		slices.Sort(h.names)
	}
	h.checks[name] = f
}

// RoleState is one role's part of a HealthReport.
type RoleState struct {
	OK    bool   `json:"ok"`
	State string `json:"state,omitempty"`
	Error string `json:"error,omitempty"`
}

// HealthReport is the JSON body of /healthz.
type HealthReport struct {
	Status string               `json:"status"` // "ok" or "unhealthy"
	Reason string               `json:"reason,omitempty"`
	Roles  map[string]RoleState `json:"roles"`
}

// Check runs every check. The report is healthy when every check is; its
// Reason then joins the failing roles' errors, "role: error; ...", in
// name order.
func (h *Health) Check() HealthReport {
	h.mu.Lock()
	names := slices.Clone(h.names)
	checks := make([]CheckFunc, len(names))
	for i, n := range names {
		checks[i] = h.checks[n]
	}
	h.mu.Unlock()
	rep := HealthReport{Status: "ok", Roles: map[string]RoleState{}}
	var reasons []string
	for i, n := range names {
		st, err := checks[i]()
		rs := RoleState{OK: err == nil, State: st}
		if err != nil {
			rs.Error = err.Error()
			reasons = append(reasons, n+": "+err.Error())
		}
		rep.Roles[n] = rs
	}
	if len(reasons) > 0 {
		rep.Status, rep.Reason = "unhealthy", strings.Join(reasons, "; ")
	}
	return rep
}

// ServeHTTP answers /healthz: 200 with the HealthReport as JSON when every
// check passes, 503 with it (Reason set) otherwise.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	rep := h.Check()
	code := http.StatusOK
	if rep.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(rep)
}

// Handler serves GET /metrics from g (the Prometheus text or protobuf
// exposition format, as the scraper asks) and GET /healthz from h (nil: no
// checks, always healthy).
func Handler(g prometheus.Gatherer, h *Health) http.Handler {
	if h == nil {
		h = &Health{}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.Handle("GET /healthz", h)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "taobox: /metrics (Prometheus), /healthz (JSON; 200 healthy, 503 not)")
	})
	return mux
}

// Server is the metrics listener of a process.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan error

	closeOnce sync.Once
	closeErr  error
}

// Listen binds addr (host:port; port 0 picks a free port) now, so that a
// busy port fails here, and serves h on it in the background until Close.
// The endpoints have no authentication: bind a loopback or private
// address.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listening on %s: %w", addr, err)
	}
	s := &Server{ln: ln, done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on (with the port chosen for
// port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, waiting up to 2 s for requests in flight. The
// Server may not be reused; later calls return the first one's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		s.closeErr = err
	})
	return s.closeErr
}
