package dashboard

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"taobox/chain/node"
	"taobox/chain/types"
)

// Column is a sortable metagraph column.
type Column int

// The sortable columns, in the order the s key cycles through them.
const (
	ColEmission Column = iota
	ColUID
	ColStake
	ColIncentive
	ColDividends
	ColVTrust
	ColUpdated
	numColumns
)

var columnNames = [numColumns]string{"emission", "uid", "stake", "incentive", "dividends", "vtrust", "updated"}

func (c Column) String() string {
	if c >= 0 && c < numColumns {
		return columnNames[c]
	}
	return "Column(" + strconv.Itoa(int(c)) + ")"
}

// Next returns the column after c, wrapping around.
func (c Column) Next() Column { return (c + 1) % numColumns }

// ParseColumn returns the column named name (as String writes it).
func ParseColumn(name string) (Column, error) {
	for c := range numColumns {
		if columnNames[c] == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown column %q (one of %s)", name, strings.Join(columnNames[:], ", "))
}

// Options are how Render draws a Snapshot. The zero value draws plain text
// 120 columns wide, every metagraph row, sorted by emission.
type Options struct {
	Width  int // columns; 0 means 120
	Height int // lines for the whole frame; 0 means no limit (every row)
	// Sort is the metagraph's sort column; Reverse flips its order (uid
	// and "updated" sort ascending, the others descending, by default).
	Sort    Column
	Reverse bool
	Color   bool      // ANSI styles (a terminal); false: plain text for scripts
	Our     []Account // whose uids are marked and get their own panel
	// RiskK: a uid is at risk when the next RiskK registrations would
	// prune it. 0 means 1.
	RiskK int
	Keys  bool   // end with the key help line (the interactive program)
	Note  string // a dim line under the title; "" for none
}

func (o *Options) width() int {
	if o.Width <= 0 {
		return 120
	}
	return o.Width
}

func (o *Options) riskK() int { return max(o.RiskK, 1) }

var (
	styleTitle = lipgloss.NewStyle().Bold(true)
	styleLabel = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12"))
	styleAlert = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	styleOK    = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
	styleOur   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("11"))
	styleDim   = lipgloss.NewStyle().Faint(true)
)

type painter struct{ color bool }

func (p painter) style(st lipgloss.Style, s string) string {
	if !p.color || s == "" {
		return s
	}
	return st.Render(s)
}

// Alerts returns the problems an operator must see first, one line each:
// a node that cannot be read or has stalled, unhealthy or silent roles,
// our uids at risk of pruning or close to the end of their immunity, and
// unreachable endpoints (from this machine or, connecting back, from a
// peer of the node).
func Alerts(s *Snapshot, o Options) []string {
	var out []string
	if s.HeadErr != "" {
		out = append(out, "node: "+s.HeadErr)
	} else if s.Head != nil && s.Head.TimeMs > 0 && !s.Taken.IsZero() {
		if age := s.Taken.Sub(time.UnixMilli(int64(s.Head.TimeMs))); age > time.Minute {
			out = append(out, fmt.Sprintf("chain: no new block for %s: the node is stalled or still syncing", formatAge(age)))
		}
	}
	for _, r := range s.Roles {
		switch {
		case r.URL == "":
		case r.Err != "":
			out = append(out, r.Name+": "+r.Err)
		case r.Health != nil && !r.Health.OK():
			out = append(out, r.Name+": "+r.Health.Summary())
		}
		if v, ok := r.Metrics.Get("taobox_node_consensus_halted"); ok && v != 0 {
			out = append(out, r.Name+": consensus HALTED (see the node's log)")
		}
	}
	if s.Metagraph != nil && s.Subnet != nil {
		ev := Evictions(s.Metagraph, s.Subnet)
		names := ours(o.Our)
		for _, i := range OurUIDs(s.Metagraph, o.Our) {
			e, nr := ev[i], &s.Metagraph.Neurons[i]
			who := fmt.Sprintf("uid %d (%s)", nr.UID, accountName(names, nr.Hotkey))
			switch {
			case e.AtRisk(o.riskK()):
				out = append(out, fmt.Sprintf("%s is AT RISK of pruning: %s", who, regsPhrase(e.RegsUntilPruned)))
			case e.Immune && e.ProspectiveRegs > 0 && e.ProspectiveRegs <= o.riskK() && e.ImmunityLeft <= s.Subnet.Hyperparams[hpImmunity]/4:
				out = append(out, fmt.Sprintf("%s: immunity ends in %d blocks, then %s at today's emissions", who, e.ImmunityLeft, regsPhrase(e.ProspectiveRegs)))
			}
		}
	}
	for _, p := range s.Probes {
		if p.Peer != nil && p.Peer.Verdict == types.ProbeUnreachable.String() {
			out = append(out, fmt.Sprintf("uid %d endpoint %s UNREACHABLE from outside (a peer tried to connect back): %s", p.UID, p.Addr, p.Peer.Reason))
		} else if p.Peer != nil && p.Peer.Verdict == types.ProbeRefused.String() {
			out = append(out, fmt.Sprintf("uid %d endpoint %s: no peer would connect back: %s", p.UID, p.Addr, p.Peer.Reason))
		}
		if !p.Reachable {
			out = append(out, fmt.Sprintf("uid %d endpoint %s UNREACHABLE: %s", p.UID, p.Addr, p.Reason))
		} else if p.Private {
			out = append(out, fmt.Sprintf("uid %d endpoint %s is a private address: validators outside this network cannot reach it (serve the public IP)", p.UID, p.Addr))
		}
	}
	return out
}

// roleMetrics returns the metrics of the role named name (nil if none).
func (s *Snapshot) roleMetrics(name string) Metrics {
	for _, r := range s.Roles {
		if r.Name == name {
			return r.Metrics
		}
	}
	return nil
}

func regsPhrase(n int) string {
	if n == 1 {
		return "the next registration replaces it"
	}
	return fmt.Sprintf("%d registrations from now replace it", n)
}

func accountName(names map[types.AccountID]string, a types.AccountID) string {
	if n := names[a]; n != "" {
		return n
	}
	return shortAddr(a)
}

// Render draws one frame of s. It is a pure function of its arguments.
func Render(s *Snapshot, o Options) string {
	p := painter{o.Color}
	var b strings.Builder
	line := func(format string, args ...any) {
		b.WriteString(ansi.Truncate(fmt.Sprintf(format, args...), o.width(), "…"))
		b.WriteByte('\n')
	}
	label := func(l string) string { return p.style(styleLabel, fmt.Sprintf("%-10s", l)) }

	title := "taobox status · node " + s.NodeURL
	if !s.Taken.IsZero() {
		title += " · " + s.Taken.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	line("%s", p.style(styleTitle, title))
	if o.Note != "" {
		line("%s", p.style(styleDim, o.Note))
	}
	for _, a := range Alerts(s, o) {
		line("%s", p.style(styleAlert, "!! "+a))
	}

	// Chain.
	if h := s.Head; h != nil {
		parts := []string{fmt.Sprintf("height %d", h.Height), shortHash(h.Hash)}
		if h.TimeMs > 0 && !s.Taken.IsZero() {
			parts = append(parts, formatAge(s.Taken.Sub(time.UnixMilli(int64(h.TimeMs))))+" ago")
		}
		nm := s.roleMetrics("node")
		if f, ok := h.Finality(); ok {
			parts = append(parts, fmt.Sprintf("finalized %d (lag %d)", f, h.Height-min(f, h.Height)))
		} else if f, ok := nm.Get("taobox_node_finalized_height"); ok {
			lag := ""
			if f >= 0 && f <= float64(h.Height) {
				lag = fmt.Sprintf("lag %d, ", h.Height-uint64(f))
			}
			parts = append(parts, fmt.Sprintf("finalized %s (%snode metrics)", formatNumber(f), lag))
		} else {
			parts = append(parts, "finality not reported")
		}
		if h.Peers != nil {
			parts = append(parts, fmt.Sprintf("peers %d", *h.Peers))
		} else if v, ok := nm.Get("taobox_node_peers"); ok {
			parts = append(parts, "peers "+formatNumber(v))
		}
		switch {
		case h.SyncTarget != nil && *h.SyncTarget > h.Height:
			parts = append(parts, fmt.Sprintf("syncing %d/%d (%.1f%%)", h.Height, *h.SyncTarget, 100*float64(h.Height)/float64(*h.SyncTarget)))
		case h.Syncing != nil && *h.Syncing:
			parts = append(parts, "syncing")
		case h.Syncing != nil || h.SyncTarget != nil:
			parts = append(parts, "synced")
		default:
			if v, ok := nm.Get("taobox_node_sync_progress_ratio"); ok && v < 1 {
				parts = append(parts, fmt.Sprintf("syncing (%.1f%%)", 100*v))
			} else if ok {
				parts = append(parts, "synced")
			}
		}
		line("%s%s", label("chain"), strings.Join(parts, " · "))
	} else {
		line("%s%s", label("chain"), "unknown")
	}

	// Roles.
	for _, r := range s.Roles {
		line("%s%s", label(r.Name), roleLine(r, p))
	}

	// Subnet.
	if len(s.Subnets) > 0 {
		var ids []string
		for _, sn := range s.Subnets {
			id := strconv.Itoa(int(sn.Netuid))
			if int(sn.Netuid) == s.Netuid {
				id = "[" + id + "]"
			}
			ids = append(ids, id)
		}
		line("%s%s", label("subnets"), strings.Join(ids, " "))
	}
	if s.SubnetErr != "" {
		line("%s%s", label("subnet"), p.style(styleAlert, s.SubnetErr))
	}
	if sn := s.Subnet; sn != nil {
		head := sn.LastEpoch
		if s.Metagraph != nil {
			head = s.Metagraph.Block
		}
		parts := []string{fmt.Sprintf("n %d", sn.N)}
		if m, ok := sn.Hyperparams[hpMaxUIDs]; ok {
			parts[0] = fmt.Sprintf("n %d/%d", sn.N, m)
		}
		parts = append(parts, fmt.Sprintf("tempo %d", sn.Tempo))
		if at, ok := NextEpoch(sn, head); ok {
			parts = append(parts, fmt.Sprintf("epoch %d, next at block %d (in %d)", sn.EpochIndex, at, at-head))
		}
		if sn.Share != nil {
			parts = append(parts, fmt.Sprintf("share %.1f%%", float64(*sn.Share)*100/65535))
		}
		line("%s%s", label(fmt.Sprintf("subnet %d", sn.Netuid)), strings.Join(parts, " · "))
		pr := RegistrationPrice(sn)
		price := fmt.Sprintf("τ%s now · τ%s after the next registration", formatTAOFixed(pr.Now, 4), formatTAOFixed(pr.AfterNext, 4))
		if pr.HalfLife > 0 {
			price += fmt.Sprintf(" · halves every %d blocks without one", pr.HalfLife)
		}
		if pr.Max > 0 {
			price += fmt.Sprintf(" · range τ%s..τ%s", formatTAO(pr.Min), formatTAO(pr.Max))
		}
		line("%s%s", label("register"), price)
	}

	// Our uids.
	if mg := s.Metagraph; mg != nil && s.Subnet != nil {
		idx := OurUIDs(mg, o.Our)
		switch {
		case len(o.Our) == 0:
			line("%s%s", label("ours"), p.style(styleDim, "no keys given (--hotkey ADDRESS or --wallet NAME marks your uids)"))
		case len(idx) == 0:
			line("%s%s", label("ours"), fmt.Sprintf("none of your %d keys holds a uid on subnet %d", len(o.Our), mg.Netuid))
		}
		ev := Evictions(mg, s.Subnet)
		names := ours(o.Our)
		for _, i := range idx {
			nr := &mg.Neurons[i]
			e := ev[i]
			head := fmt.Sprintf("uid %d %s %s", nr.UID, accountName(names, nr.Hotkey), shortAddr(nr.Hotkey))
			role := "miner"
			if nr.ValidatorPermit {
				role = "validator permit"
			}
			parts := []string{role}
			if nr.ValidatorPermit || nr.Hotkey == s.Subnet.OwnerHotkey {
				w := NextWeightWindow(nr.LastUpdate, s.Subnet.Hyperparams[hpRateLimit], mg.Block)
				verb := "weights"
				if s.Subnet.Hyperparams[hpCommitRvl] == 1 {
					verb = "weight commit"
				}
				if w.Open() {
					parts = append(parts, "next "+verb+" window: open now (the next block accepts them)")
				} else {
					parts = append(parts, fmt.Sprintf("next %s window in %d blocks (block %d)", verb, w.In, w.At))
				}
			}
			line("  %s", p.style(styleOur, head)+" · "+strings.Join(parts, " · "))
			line("      %s", evictionPhrase(e, o.riskK(), p))
			for _, pb := range s.Probes {
				if pb.UID == nr.UID {
					line("      %s", probePhrase(pb, p))
					if ph := peerProbePhrase(pb, p); ph != "" {
						line("      %s", ph)
					}
				}
			}
			if nr.Axon.Host == "" && !nr.ValidatorPermit {
				line("      %s", p.style(styleAlert, "no endpoint served: validators cannot find this uid (taobox tx serve)"))
			}
		}
	}

	// Metagraph.
	if mg := s.Metagraph; mg != nil {
		dir := "↓"
		if ascending(o.Sort) != o.Reverse {
			dir = "↑"
		}
		line("%s%s", label("metagraph"), fmt.Sprintf("%d uids · block %d · sorted by %s %s", len(mg.Neurons), mg.Block, o.Sort, dir))
		used := strings.Count(b.String(), "\n")
		rows := -1
		if o.Height > 0 {
			rows = max(o.Height-used-2, 1) // the header and the key line
		}
		writeTable(&b, s, o, p, rows)
	}
	if o.Keys {
		line("%s", p.style(styleDim, "q quit · tab next subnet · s sort column · S reverse · r refresh and probe"))
	}
	return b.String()
}

func roleLine(r Role, p painter) string {
	if r.URL == "" {
		return p.style(styleDim, "not configured")
	}
	var parts []string
	switch {
	case r.Err != "":
		parts = append(parts, p.style(styleAlert, "DOWN: "+r.Err))
	case r.Health != nil && r.Health.OK():
		parts = append(parts, p.style(styleOK, r.Health.Summary()))
	case r.Health != nil:
		parts = append(parts, p.style(styleAlert, r.Health.Summary()))
	default:
		parts = append(parts, "up (no /healthz)")
	}
	parts = append(parts, highlights(r.Name, r.Metrics)...)
	return strings.Join(parts, " · ")
}

// highlights picks the few metrics worth a glance from a role's page (the
// names of docs/metrics.md; counters summed over their label sets), else
// up to four unlabelled taobox_<role>_ series. A page shared by several
// roles (the devnet's) shows each role its own.
func highlights(role string, m Metrics) []string {
	if len(m) == 0 {
		return nil
	}
	var out []string
	count := func(label, name string) {
		if v, ok := m.Sum(name); ok {
			out = append(out, label+" "+formatNumber(v))
		}
	}
	ratio := func(label, name string) {
		if v, ok := m.Get(name); ok {
			out = append(out, fmt.Sprintf("%s %.0f%%", label, 100*v))
		}
	}
	switch role {
	case "node":
		count("height", "taobox_node_height")
		count("finalized", "taobox_node_finalized_height")
		count("peers", "taobox_node_peers")
		ratio("sync", "taobox_node_sync_progress_ratio")
		count("mempool", "taobox_node_mempool_txs")
		if v, ok := m.Get("taobox_node_consensus_halted"); ok && v != 0 {
			out = append(out, "consensus HALTED")
		}
	case "miner":
		count("served", "taobox_miner_tasks_served_total")
		count("tokens", "taobox_miner_tokens_total")
		count("rejected", "taobox_miner_rejects_total")
		count("conns", "taobox_miner_connections_open")
		count("queue", "taobox_miner_queue_depth")
		if v, ok := m.Get("taobox_miner_answer_seconds_mean"); ok && v > 0 {
			out = append(out, fmt.Sprintf("answer %.0f ms", v*1000))
		}
		if v, ok := m.Sum("taobox_miner_accel_answers_total"); ok && v > 0 {
			out = append(out, "on the GPU "+formatNumber(v))
		}
		if v, ok := m.Sum("taobox_miner_accel_failovers_total"); ok && v > 0 {
			out = append(out, "GPU failovers "+formatNumber(v))
		}
		if v, ok := m.SumLabel("taobox_miner_initial_drop_active", `scope="all"`); ok && v > 0 {
			out = append(out, "flood: dropping new connections")
		} else if v, ok := m.SumLabel("taobox_miner_initial_drop_active", `scope="ip"`); ok && v > 0 {
			out = append(out, "flood: dropping "+formatNumber(v)+" sources")
		}
	case "validator":
		count("rounds", "taobox_validator_rounds_total")
		count("tasks sent", "taobox_validator_tasks_sent_total")
		count("passed", "taobox_validator_tasks_passed_total")
		ratio("last round pass", "taobox_validator_verification_pass_ratio")
		if okN, found := m.SumLabel("taobox_validator_weights_submissions_total", `status="ok"`); found {
			all, _ := m.Sum("taobox_validator_weights_submissions_total")
			out = append(out, fmt.Sprintf("weights ok %s, refused %s", formatNumber(okN), formatNumber(all-okN)))
		}
		var next *Sample
		for i := range m {
			if m[i].Name == "taobox_validator_weight_window_blocks" && (next == nil || m[i].Value < next.Value) {
				next = &m[i]
			}
		}
		if next != nil {
			w := "weight window in " + formatNumber(next.Value) + " blocks"
			if next.Value == 0 {
				w = "weight window open"
			}
			if a := labelValue(next.Labels, "action"); a != "" {
				w += " (" + a + ")"
			}
			out = append(out, w)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, s := range m {
		if s.Labels == "" && strings.HasPrefix(s.Name, "taobox_"+role+"_") && len(out) < 4 {
			out = append(out, strings.TrimPrefix(s.Name, "taobox_"+role+"_")+" "+formatNumber(s.Value))
		}
	}
	return out
}

// labelValue returns the value of label name in a label set as written
// between braces (`a="1",b="x"`), unescaped; "" when absent.
func labelValue(labels, name string) string {
	for rest := labels; rest != ""; {
		eq := strings.Index(rest, "=\"")
		if eq < 0 {
			return ""
		}
		key := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest[:eq]), ","))
		var val strings.Builder
		i := eq + 2
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				if rest[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(rest[i])
		}
		if key == name {
			return val.String()
		}
		if i >= len(rest) {
			return ""
		}
		rest = rest[i+1:]
	}
	return ""
}

func evictionPhrase(e Eviction, k int, p painter) string {
	switch {
	case e.Owner:
		return p.style(styleOK, "the subnet owner's hotkey: never pruned")
	case e.Immune:
		s := fmt.Sprintf("immune for %d more blocks", e.ImmunityLeft)
		if e.ProspectiveRank > 0 {
			s += fmt.Sprintf("; then number %d of %d in the pruning order at today's emissions", e.ProspectiveRank, e.Prunable+1)
		}
		if e.ProspectiveRegs > 0 {
			s += " (" + regsPhrase(e.ProspectiveRegs) + ")"
		}
		if e.ProspectiveRegs > 0 && e.ProspectiveRegs <= k {
			return p.style(styleAlert, s)
		}
		return s
	case e.AtRisk(k):
		return p.style(styleAlert, fmt.Sprintf("eviction risk: number %d of %d non-immune by emission: AT RISK, %s", e.Rank, e.Prunable, regsPhrase(e.RegsUntilPruned)))
	case e.RegsUntilPruned > 0:
		return p.style(styleOK, fmt.Sprintf("eviction risk: number %d of %d non-immune by emission: %s", e.Rank, e.Prunable, regsPhrase(e.RegsUntilPruned)))
	}
	return fmt.Sprintf("eviction risk: number %d of %d non-immune by emission", e.Rank, e.Prunable)
}

func probePhrase(pb Probe, p painter) string {
	if !pb.Reachable {
		return p.style(styleAlert, fmt.Sprintf("endpoint %s UNREACHABLE from this machine: %s", pb.Addr, pb.Reason))
	}
	s := fmt.Sprintf("endpoint %s reachable from this machine (QUIC handshake %s, key pinned)", pb.Addr, formatAge(pb.RTT))
	if pb.Private {
		return p.style(styleAlert, s+": but a private address, unreachable from outside")
	}
	return p.style(styleOK, s)
}

// peerProbePhrase describes the connect-back check a peer of the node made
// ("" when none was asked).
func peerProbePhrase(pb Probe, p painter) string {
	r := pb.Peer
	switch {
	case r == nil && pb.PeerErr == "":
		return ""
	case r == nil:
		return p.style(styleDim, "connect-back check by a peer: cannot ask the node: "+pb.PeerErr)
	}
	seen := ""
	if r.Observed != "" {
		seen = "; peers see this machine at " + r.Observed
	}
	switch r.Verdict {
	case types.ProbeReachable.String():
		return p.style(styleOK, fmt.Sprintf("reachable from outside: peer %s connected back (QUIC handshake %.1f ms, key pinned)%s", shortPeer(r.Peer), r.RTTMs, seen))
	case types.ProbeUnreachable.String():
		return p.style(styleAlert, fmt.Sprintf("UNREACHABLE from outside: peer %s could not connect back: %s%s (check the UDP port forward, the firewall, --serve-host)", shortPeer(r.Peer), r.Reason, seen))
	case types.ProbeRefused.String():
		return p.style(styleAlert, "no peer would connect back: "+r.Reason)
	case node.ProbeNoPeers:
		return p.style(styleDim, "connect-back check: no peers to ask ("+r.Reason+")")
	}
	return p.style(styleDim, "connect-back check failed: "+r.Reason)
}

// shortPeer cuts an SS58 peer id for display.
func shortPeer(s string) string {
	if len(s) > 12 {
		return s[:6] + "…" + s[len(s)-4:]
	}
	return s
}

func ascending(c Column) bool { return c == ColUID || c == ColUpdated }

// SortNeurons returns the indexes of mg.Neurons in the order of column c
// (ties by uid); reverse flips it.
func SortNeurons(mg *node.MetagraphInfo, c Column, reverse bool) []int {
	idx := make([]int, len(mg.Neurons))
	for i := range idx {
		idx[i] = i
	}
	key := func(n *node.NeuronInfo) uint64 {
		switch c {
		case ColStake:
			return n.Stake
		case ColIncentive:
			return uint64(n.Incentive)
		case ColDividends:
			return uint64(n.Dividends)
		case ColEmission:
			return n.Emission
		case ColVTrust:
			return uint64(n.ValidatorTrust)
		case ColUpdated:
			return mg.Block - min(n.LastUpdate, mg.Block)
		}
		return uint64(n.UID)
	}
	asc := ascending(c) != reverse
	slices.SortStableFunc(idx, func(a, b int) int {
		na, nb := &mg.Neurons[a], &mg.Neurons[b]
		r := cmp.Compare(key(na), key(nb))
		if !asc {
			r = -r
		}
		if r == 0 {
			r = cmp.Compare(na.UID, nb.UID)
		}
		return r
	})
	return idx
}

// writeTable writes the metagraph table: our rows marked with », limited
// to rows lines (-1: all) with our rows kept.
func writeTable(b *strings.Builder, s *Snapshot, o Options, p painter, rows int) {
	mg := s.Metagraph
	order := SortNeurons(mg, o.Sort, o.Reverse)
	our := map[int]bool{}
	for _, i := range OurUIDs(mg, o.Our) {
		our[i] = true
	}
	hidden := 0
	if rows >= 0 && len(order) > rows {
		keep := max(rows-1, 0) // one line says how many are hidden
		var shown []int
		room := keep - len(our)
		for _, i := range order {
			if our[i] || room > 0 {
				shown = append(shown, i)
				if !our[i] {
					room--
				}
			}
		}
		hidden = len(order) - len(shown)
		order = shown
	}
	ev := Evictions(mg, s.Subnet)
	var t bytes.Buffer
	tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, " \tUID\tHOTKEY\tSTAKE τ\tVTRUST\tINCENTIVE\tDIVIDENDS\tEMISSION ρ\tVPERMIT\tUPDATED\tIMMUNE\tAXON\t")
	for _, i := range order {
		n := &mg.Neurons[i]
		mark := ""
		if our[i] {
			mark = "»"
		}
		permit := ""
		if n.ValidatorPermit {
			permit = "*"
		}
		immune := ""
		if ev != nil && ev[i].Immune {
			immune = strconv.FormatUint(ev[i].ImmunityLeft, 10)
		}
		axon := "none"
		if n.Axon.Host != "" {
			axon = n.Axon.Host + ":" + strconv.Itoa(int(n.Axon.Port))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t\n",
			mark, n.UID, shortAddr(n.Hotkey), formatTAOFixed(n.Stake, 4), fraction(n.ValidatorTrust),
			fraction(n.Incentive), fraction(n.Dividends), n.Emission, permit, mg.Block-min(n.LastUpdate, mg.Block), immune, axon)
	}
	tw.Flush()
	lines := strings.Split(strings.TrimRight(t.String(), "\n"), "\n")
	for j, l := range lines {
		l = strings.TrimRight(l, " ")
		if j > 0 && our[order[j-1]] {
			l = p.style(styleOur, l)
		}
		b.WriteString(ansi.Truncate(l, o.width(), "…"))
		b.WriteByte('\n')
	}
	if hidden > 0 {
		b.WriteString(ansi.Truncate(p.style(styleDim, fmt.Sprintf("  … %d more uids (a taller terminal shows them; your uids are always shown)", hidden)), o.width(), "…"))
		b.WriteByte('\n')
	}
}

// shortAddr is an address's first 8 characters and an ellipsis.
func shortAddr(a types.AccountID) string { return a.String()[:8] + "…" }

func shortHash(h types.Hash) string { return h.String()[:12] + "…" }

// fraction writes a u16 fixed-point fraction of 65535 with 4 decimals.
func fraction(v uint16) string { return strconv.FormatFloat(float64(v)/65535, 'f', 4, 64) }

// formatTAO writes rao as TAO without trailing zeros.
func formatTAO(rao uint64) string {
	s := formatTAOFixed(rao, 9)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// formatTAOFixed writes rao as TAO with d decimals (truncated).
func formatTAOFixed(rao uint64, d int) string {
	whole, frac := rao/types.RaoPerTAO, rao%types.RaoPerTAO
	if d <= 0 {
		return strconv.FormatUint(whole, 10)
	}
	f := fmt.Sprintf("%09d", frac)[:min(d, 9)]
	return strconv.FormatUint(whole, 10) + "." + f
}

// formatAge writes a duration for a person: "850 ms", "4.2 s", "3 min",
// "2 h 5 min".
func formatAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0 ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}
