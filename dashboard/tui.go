package dashboard

import (
	"context"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"
)

// Source reads what the dashboard shows. Its methods are called from
// bubbletea commands (their own goroutines), one at a time.
type Source interface {
	// Height returns the node's head height: the program polls it every
	// Config.Poll and reads a whole Snapshot when it changes.
	Height(ctx context.Context) (uint64, error)
	// Snapshot reads everything for subnet netuid (-1: the first subnet);
	// it never returns nil, and records what it could not read in the
	// Snapshot's *Err fields. probe asks it to check the reachability of
	// our endpoints too (Snapshot.Probes); without it, the Source may keep
	// the last probes.
	Snapshot(ctx context.Context, netuid int, probe bool) *Snapshot
}

// Config configures Run and NewModel.
type Config struct {
	Source  Source
	Netuid  int     // the subnet shown first; -1: the first one
	Options Options // Width and Height follow the terminal
	// Poll is how often the head is polled; a new block reads a Snapshot.
	// 0 means 1 s.
	Poll time.Duration
	// ProbeEvery is how often our endpoints are probed again (r probes
	// at once). 0 means 60 s.
	ProbeEvery time.Duration
	// Now is the clock that decides when to probe again; nil: time.Now.
	Now func() time.Time
}

// Model is the bubbletea model of the dashboard. Keys: q or ctrl+c quit;
// tab and shift+tab switch subnet; s cycles the sort column; S reverses
// it; r reads everything again and probes the endpoints.
type Model struct {
	cfg       Config
	ctx       context.Context
	snap      *Snapshot
	opt       Options
	netuid    int
	height    uint64
	busy      bool // a Snapshot read is in flight
	again     bool // read once more when it lands (a key came meanwhile)
	probe     bool // probe in the next read
	lastProbe time.Time
}

type (
	tickMsg   struct{}
	heightMsg struct {
		h   uint64
		err error
	}
	snapMsg struct{ s *Snapshot }
)

// NewModel returns the program's model; ctx bounds its reads.
func NewModel(ctx context.Context, cfg Config) *Model {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opt := cfg.Options
	opt.Color, opt.Keys = true, true
	return &Model{cfg: cfg, ctx: ctx, opt: opt, netuid: cfg.Netuid, probe: true}
}

// Snapshot returns the snapshot on screen (nil before the first read).
func (m *Model) Snapshot() *Snapshot { return m.snap }

// Options returns the current view options (sort, size).
func (m *Model) Options() Options { return m.opt }

// Netuid returns the subnet being shown (-1 before the first read).
func (m *Model) Netuid() int { return m.netuid }

// Init reads the first snapshot and starts polling.
func (m *Model) Init() tea.Cmd { return tea.Batch(m.read(), m.tick()) }

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.cfg.Poll, func(time.Time) tea.Msg { return tickMsg{} })
}

// read starts a Snapshot read unless one is in flight (then it reads
// again when that one lands).
func (m *Model) read() tea.Cmd {
	if m.busy {
		m.again = true
		return nil
	}
	m.busy = true
	probe := m.probe || m.cfg.Now().Sub(m.lastProbe) >= m.cfg.ProbeEvery
	if probe {
		m.probe, m.lastProbe = false, m.cfg.Now()
	}
	src, ctx, netuid := m.cfg.Source, m.ctx, m.netuid
	return func() tea.Msg { return snapMsg{src.Snapshot(ctx, netuid, probe)} }
}

// Update handles keys, the poll tick, heights and snapshots.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.opt.Width, m.opt.Height = msg.Width, msg.Height
	case tea.KeyPressMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "tab":
			m.netuid = m.nextSubnet(1)
			return m, m.read()
		case "shift+tab":
			m.netuid = m.nextSubnet(-1)
			return m, m.read()
		case "s":
			m.opt.Sort, m.opt.Reverse = m.opt.Sort.Next(), false
		case "S":
			m.opt.Reverse = !m.opt.Reverse
		case "r":
			m.probe = true
			return m, m.read()
		}
	case tickMsg:
		src, ctx := m.cfg.Source, m.ctx
		return m, tea.Batch(m.tick(), func() tea.Msg {
			h, err := src.Height(ctx)
			return heightMsg{h, err}
		})
	case heightMsg:
		if msg.err == nil && msg.h != m.height {
			m.height = msg.h
			return m, m.read()
		}
		if msg.err != nil && m.snap != nil && m.snap.HeadErr == "" {
			return m, m.read() // show the error
		}
	case snapMsg:
		m.busy = false
		m.snap = msg.s
		if msg.s.Head != nil {
			m.height = max(m.height, msg.s.Head.Height)
		}
		if m.netuid < 0 {
			m.netuid = msg.s.Netuid
		}
		if m.again {
			m.again = false
			return m, m.read()
		}
	}
	return m, nil
}

// nextSubnet returns the netuid step places after the one shown, in the
// snapshot's subnet list (wrapping).
func (m *Model) nextSubnet(step int) int {
	if m.snap == nil || len(m.snap.Subnets) == 0 {
		return m.netuid
	}
	list := m.snap.Subnets
	at := 0
	for i, sn := range list {
		if int(sn.Netuid) == m.netuid {
			at = i
		}
	}
	at = ((at+step)%len(list) + len(list)) % len(list)
	return int(list[at].Netuid)
}

// View renders the current snapshot on the alternate screen.
func (m *Model) View() tea.View {
	var v tea.View
	if m.snap == nil {
		v.SetContent("taobox status: reading the node…\n")
	} else {
		v.SetContent(Render(m.snap, m.opt))
	}
	v.AltScreen = true
	v.WindowTitle = "taobox status"
	return v
}

// Run runs the dashboard on a terminal until q, ctrl+c or ctx ends. in and
// out are the terminal (os.Stdin and os.Stdout); other readers and writers
// work too (the tests drive it through pipes), with opts such as
// tea.WithWindowSize for a fixed size.
func Run(ctx context.Context, cfg Config, in io.Reader, out io.Writer, opts ...tea.ProgramOption) error {
	_, err := run(ctx, cfg, in, out, opts...)
	return err
}

// run is Run returning the final model.
func run(ctx context.Context, cfg Config, in io.Reader, out io.Writer, opts ...tea.ProgramOption) (*Model, error) {
	m := NewModel(ctx, cfg)
	opts = append([]tea.ProgramOption{tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out)}, opts...)
	_, err := tea.NewProgram(m, opts...).Run()
	if ctx.Err() != nil {
		return m, nil // cancelled from outside (SIGINT): a normal end
	}
	return m, err
}
