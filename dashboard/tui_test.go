package dashboard

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"taobox/internal/syncbuf"
)

// fixedSource serves testSnapshot for subnets 0 and 1 and records reads.
type fixedSource struct {
	mu     sync.Mutex
	reads  []int // netuid of each Snapshot call
	probes int
	height uint64
}

func (f *fixedSource) Height(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.height, nil
}

func (f *fixedSource) Snapshot(_ context.Context, netuid int, probe bool) *Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, netuid)
	if probe {
		f.probes++
	}
	s, _ := testSnapshot()
	if netuid < 0 {
		netuid = 1
	}
	s.Netuid = netuid
	return s
}

// drain runs a command and feeds what it returns back into the model, as
// the program would (batches flattened; ticks dropped).
func drain(t *testing.T, m *Model, cmd tea.Cmd) {
	t.Helper()
	for cmd != nil {
		msg := cmd()
		switch msg := msg.(type) {
		case tea.BatchMsg:
			for _, c := range msg {
				if c != nil {
					if _, ok := c().(tickMsg); !ok {
						drain(t, m, c)
					}
				}
			}
			return
		case tickMsg, nil:
			return
		default:
			_, cmd = m.Update(msg)
		}
	}
}

func key(s string) tea.KeyPressMsg {
	switch s {
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	}
	return tea.KeyPressMsg{Code: rune(s[0]), Text: s}
}

func TestModelKeys(t *testing.T) {
	src := &fixedSource{height: 1000}
	m := NewModel(context.Background(), Config{Source: src, Netuid: -1, Options: Options{Our: []Account{{Address: acct(2)}}}})
	drain(t, m, m.read())
	if m.Snapshot() == nil || m.Netuid() != 1 || src.probes != 1 {
		t.Fatalf("after the first read: snapshot %v, netuid %d, probes %d", m.Snapshot() != nil, m.Netuid(), src.probes)
	}
	if v := m.View(); !v.AltScreen || !strings.Contains(ansi.Strip(v.Content), "sorted by emission ↓") {
		t.Errorf("first view: %q", v.Content)
	}

	m.Update(key("s"))
	if m.Options().Sort != ColUID {
		t.Errorf("s: sort %v", m.Options().Sort)
	}
	m.Update(key("S"))
	if !m.Options().Reverse || !strings.Contains(ansi.Strip(m.View().Content), "sorted by uid ↓") {
		t.Errorf("S: reverse %v", m.Options().Reverse)
	}

	_, cmd := m.Update(key("tab"))
	drain(t, m, cmd)
	if m.Netuid() != 0 || src.reads[len(src.reads)-1] != 0 {
		t.Errorf("tab: netuid %d, reads %v", m.Netuid(), src.reads)
	}
	_, cmd = m.Update(key("shift+tab"))
	drain(t, m, cmd)
	if m.Netuid() != 1 {
		t.Errorf("shift+tab: netuid %d", m.Netuid())
	}

	before := src.probes
	_, cmd = m.Update(key("r"))
	drain(t, m, cmd)
	if src.probes != before+1 {
		t.Errorf("r: probes %d, want %d", src.probes, before+1)
	}

	// A new height reads a snapshot; the same height does not.
	n := len(src.reads)
	drain(t, m, func() tea.Msg { return heightMsg{h: 1000} })
	if len(src.reads) != n {
		t.Errorf("the same height read again")
	}
	drain(t, m, func() tea.Msg { return heightMsg{h: 1001} })
	if len(src.reads) != n+1 {
		t.Errorf("a new height was not read")
	}

	m.Update(tea.WindowSizeMsg{Width: 70, Height: 20})
	for _, l := range strings.Split(m.View().Content, "\n") {
		if ansi.StringWidth(l) > 70 {
			t.Errorf("a line wider than the window: %q", ansi.Strip(l))
		}
	}
	if _, cmd := m.Update(key("q")); cmd == nil {
		t.Error("q returned no command")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
}

// TestRunProgram runs the real bubbletea program on pipes: it draws the
// dashboard, takes keys and quits on q. (The screen itself, as a terminal
// shows it, is checked through tmux in cmd/taobox.)
func TestRunProgram(t *testing.T) {
	src := &fixedSource{height: 1000}
	inR, inW := io.Pipe()
	defer inW.Close()
	var out syncbuf.Buffer
	type result struct {
		m   *Model
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		m, err := run(ctx, Config{Source: src, Netuid: 1, Poll: 20 * time.Millisecond}, inR, &out, tea.WithWindowSize(140, 60))
		done <- result{m, err}
	}()
	waitFor(t, &out, "sorted by emission ↓")
	inW.Write([]byte("s"))
	inW.Write([]byte("S"))
	inW.Write([]byte("q"))
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		if o := r.m.Options(); o.Sort != ColUID || !o.Reverse || o.Width != 140 || o.Height != 60 {
			t.Errorf("after s, S: options %+v", o)
		}
		if r.m.Snapshot() == nil {
			t.Error("no snapshot was read")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the program did not quit on q")
	}
}

// waitFor waits until the program's output contains s.
func waitFor(t *testing.T, out *syncbuf.Buffer, s string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(ansi.Strip(out.String()), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the output never showed %q:\n%s", s, ansi.Strip(out.String()))
		}
	}
}
